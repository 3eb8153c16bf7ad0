"""The error-handling half of vigil (arrives with the error-handling issue)."""
