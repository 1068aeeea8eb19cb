# The project's Airflow image, used by every Airflow service of docker-compose.yml and by the read API.
# Airflow comes from the official image of the version requirements.txt pins (tests/unit/test_docker_compose.py
# checks the two agree); the project's pinned requirements go on top; the project is used from /opt/airflow as
# from a checkout (PROJECT_ROOT), with dags/ and plugins/ where Airflow looks by default.
FROM apache/airflow:3.3.2-python3.11

# Dependencies first, so that a code change does not re-run pip. apache-airflow==3.3.2 is pinned in the file, so
# pip keeps the image's Airflow.
COPY --chown=airflow:0 requirements.txt /opt/airflow/requirements.txt
RUN pip install --no-cache-dir --disable-pip-version-check -r /opt/airflow/requirements.txt

COPY --chown=airflow:0 pipelines/ /opt/airflow/pipelines/
COPY --chown=airflow:0 dags/ /opt/airflow/dags/
COPY --chown=airflow:0 sql/ /opt/airflow/sql/
COPY --chown=airflow:0 config/ /opt/airflow/config/
COPY --chown=airflow:0 expectations/ /opt/airflow/expectations/
# plugins/ may hold no file yet, and git keeps no empty directory: the [s] glob lets BuildKit copy nothing then.
COPY --chown=airflow:0 plugin[s] /opt/airflow/plugins/

ENV PROJECT_ROOT=/opt/airflow \
    PYTHONPATH=/opt/airflow \
    GX_ANALYTICS_ENABLED=false
