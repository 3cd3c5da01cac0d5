"""Mail in: sources, storing, and the pure parser."""
