"""license_manifest: what may train what (shared/domain.md's license table), one row per image."""
