"""napkit."""
