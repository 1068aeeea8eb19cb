"""The resident-population database (实有人口库): its attributes, source mappings and domain rules."""
