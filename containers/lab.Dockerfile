# The lab environment: Debian 13's Python 3.13, the locked Python packages and
# the lab package. It is the source of containers/lab.def (Apptainer, made by
# `make def` with spython; a test fails when the two drift) and the base of
# the cluster's Slurm image. Build context: the repository root.
FROM debian:13.2-slim
LABEL org.dask-slurm-lab.lock-sha256="6f808bc3bcdb653452b887ec564477e3c6cdfc2f2565973f33d3e95f44fb40a5"
ENV LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive
COPY containers/debian.sources /etc/apt/sources.list.d/debian.sources
COPY containers/apt-install /usr/local/sbin/apt-install
RUN rm -f /etc/apt/sources.list \
    && apt-install python3=3.13.5-1 python3-venv=3.13.5-1
# Python packages from the locked wheelhouse only, never from the network
# (containers/venv_install.py). The wheelhouse is mounted for the step, not
# copied: a COPY would keep its 60 MB in a layer of its own. No pip,
# setuptools or test suites in the venv; extension modules stripped (binutils,
# for this step only). LAB_WITHOUT: packages the image's role does without,
# with what only they need (the compute nodes' image: matplotlib bokeh).
ARG LAB_WITHOUT=""
COPY containers/venv_install.py /usr/local/sbin/venv-install
COPY requirements.lock /opt/lab/requirements.lock
RUN --mount=type=bind,source=wheelhouse,target=/tmp/wheelhouse \
    apt-install --no-record binutils=2.44-3 \
    && venv-install make /opt/lab/venv /opt/lab/requirements.lock /tmp/wheelhouse --without ${LAB_WITHOUT} \
    && apt-get purge -y -q --auto-remove binutils >/dev/null
# The site wrapper travels in the image: lab.sif is all a site needs
# (apptainer exec lab.sif cat /opt/lab/bin/lab-apptainer > lab-apptainer).
COPY bin/lab-apptainer /opt/lab/bin/lab-apptainer
COPY pyproject.toml /opt/lab/src/pyproject.toml
COPY README.md /opt/lab/src/README.md
COPY lab/ /opt/lab/src/lab/
# The lab package, built in pip's isolated build environment from the
# wheelhouse's setuptools. /opt/site-slurm: where bin/lab-apptainer binds a
# site's Slurm client. lab-image.pth: every Python of the image (worker
# jobs, the lesson's own scripts) gets the TLS fix of lab/openssl_queue.py,
# not only `lab`, and under Apptainer workers in this image
# (lab/apptainer.py's name_workers_python). Byte-compiled: what the lab's runs
# import (venv-install compile runs them), so no worker compiles at start.
RUN --mount=type=bind,source=wheelhouse,target=/tmp/wheelhouse \
    python3 "$(echo /usr/share/python-wheels/pip-*.whl)/pip" --python /opt/lab/venv/bin/python install -q \
        --no-cache-dir --no-index --find-links /tmp/wheelhouse --no-deps /opt/lab/src \
    && rm -rf /opt/lab/src \
    && echo 'import lab.openssl_queue, lab.apptainer; lab.apptainer.name_workers_python()' \
        >"$(/opt/lab/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/lab-image.pth" \
    && mkdir -p /opt/site-slurm \
    && venv-install compile /opt/lab/venv
ENV PATH=/opt/lab/venv/bin:$PATH
ENTRYPOINT ["lab"]
