"""The recipe: YAML read with line marks, the typed models and steps, rules and data checks."""
