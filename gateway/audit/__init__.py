"""The auditors' toolkit: the allowlist as evidence, the database scan, the minimisation trail."""
