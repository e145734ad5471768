"""raw_portfolio: inventory of the studio's image files with their provenance. Read-only."""
