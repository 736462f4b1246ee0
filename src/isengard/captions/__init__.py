"""The caption concept, in one place.

trigger.py         the `[trigger]` placeholder, caption text from uploaded .txt files
style.py           the caption style pass (length, identity terms, where the trigger goes)
lint.py            the caption linter behind the dataset report and `GET …/captions/lint`
identity_words.py  the identity word lists per language
"""
