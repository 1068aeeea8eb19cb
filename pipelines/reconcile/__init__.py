"""Identity reconciliation under 一数一源: matching, statements, survivorship, lineage, SCD2, discrepancies."""
