"""Stored images: accepted uploads, their bytes in object storage, their rows, the orphan sweep."""
