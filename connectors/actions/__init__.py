"""Action targets: where an approved proposal is carried out."""
