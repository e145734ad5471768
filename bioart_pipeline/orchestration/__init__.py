"""The Dagster layer: thin assets over the core stages, checks, resources, sensors, jobs."""
