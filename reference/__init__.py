"""The reference VCB backup proxy."""
