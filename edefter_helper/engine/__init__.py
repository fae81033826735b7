"""Engine: ledger files -> month sets -> verification -> package. Pure, no UI."""
