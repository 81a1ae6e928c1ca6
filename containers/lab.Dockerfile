# The lab environment: Debian's Python 3.11, the locked Python packages and
# the lab package. It is the source of containers/lab.def (Apptainer, made by
# `make def` with spython; a test fails when the two drift) and the base of
# the cluster's Slurm image. Build context: the repository root.
FROM debian:12.12-slim
LABEL org.dask-slurm-lab.version="0.1.0"
LABEL org.dask-slurm-lab.lock-sha256="db2eb875abe4f75cba8f2815b4012326fe25e90670629714cc573b678c766aaa"
ENV LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive
COPY containers/debian.sources /etc/apt/sources.list.d/debian.sources
COPY containers/apt-install /usr/local/sbin/apt-install
RUN rm -f /etc/apt/sources.list \
    && apt-install python3=3.11.2-1+b1 python3-venv=3.11.2-1+b1
# Python packages from the locked wheelhouse only, never from the network.
COPY requirements.lock /opt/lab/requirements.lock
COPY wheelhouse/ /tmp/wheelhouse/
RUN python3 -m venv /opt/lab/venv \
    && /opt/lab/venv/bin/pip install --no-cache-dir --no-index --find-links /tmp/wheelhouse --require-hashes -r /opt/lab/requirements.lock \
    && rm -rf /tmp/wheelhouse
COPY pyproject.toml /opt/lab/src/pyproject.toml
COPY README.md /opt/lab/src/README.md
COPY lab/ /opt/lab/src/lab/
# /opt/site-slurm: where bin/lab-apptainer binds a site's Slurm client.
RUN /opt/lab/venv/bin/pip install --no-cache-dir --no-index --no-deps --no-build-isolation /opt/lab/src \
    && rm -rf /opt/lab/src/build /opt/lab/src/*.egg-info \
    && mkdir -p /opt/site-slurm
ENV PATH=/opt/lab/venv/bin:$PATH
ENTRYPOINT ["lab"]
