"""A dataset image's files in the data tree (the original, its thumbnail, its caption file), below the API and the
jobs so both write them the same way."""
