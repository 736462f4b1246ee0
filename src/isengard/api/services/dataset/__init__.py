"""The dataset feature: characters, their images (uploads, zips, thumbnails, caption files) and the quality report."""
