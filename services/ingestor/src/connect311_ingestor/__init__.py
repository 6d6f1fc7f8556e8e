"""Connect311 package."""
