"""Feed sources (edges): HTTP pollers, file import and timed replay."""
