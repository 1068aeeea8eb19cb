"""The only place in the package that imports Airflow: Assets and the central list of DAG tags."""
