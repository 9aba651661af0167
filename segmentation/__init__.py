"""Client segmentation: data-driven and rule-based segments, profiles, transitions."""
