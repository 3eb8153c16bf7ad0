"""The monitoring half of vigil (re-exports filled in by the lead)."""
