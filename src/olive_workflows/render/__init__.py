"""Recipe -> Olive config: the template context and the one Jinja environment."""
