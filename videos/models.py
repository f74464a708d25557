"""Video models: filled in by the videos issue."""
