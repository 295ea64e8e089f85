"""emofuse package."""
