"""Test helpers shared by every test layer (real servers, no fakes)."""
