"""The read API over the published open data (FastAPI): catalog, datasets, identity verification.

app.py (routes, errors, access), store.py (reads of the publish schema), verify.py (核验 and its audit log),
keys.py (API keys as hashes, CLI), pii.py (the response guard), datasets.py (the dataset definitions adapter).
docs/api.md is the guide.
"""
