"""Publication of the approved subsets: open dataset definitions, the automatic privacy and confidentiality review
(保密审查), versioned releases (files, refreshed tables), approval, the catalog (DCAT) and the changelog.

- ``datasets``    the definitions under ``datasets/<database>/<code>.yaml|.sql``, schema-validated at load
- ``pii``         the scan for ID-number and phone patterns over rows and written files
- ``suppression`` small-cell suppression with complementary suppression, and its audit (nothing recoverable)
- ``exports``     the four file formats (CSV with BOM, XLSX, XML, JSON), written in one pass, and their readers
- ``catalog``     catalog.json, catalog.jsonld (DCAT), CHANGELOG.md and changelog.jsonl
- ``flow``        what the DAG and the CLI call: prepare_release, approve_release, reject_release,
                  publish_release, rollback, list_releases
- ``cli``         ``python -m pipelines publish …``

docs/publication.md explains the design; the release life cycle is in ``flow``'s docstring.
"""
