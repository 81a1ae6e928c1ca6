-- module load python: the nodes' Python (Debian 13's 3.13, the same path on
-- every node, so a virtualenv in the shared home runs on the compute nodes),
-- with virtualenv, as an Alliance site's python module gives it. pip in a
-- virtualenv installs from the site's wheelhouse alone (/etc/pip.conf).
whatis("Python 3.13 with virtualenv; pip installs from the cluster's wheelhouse")
help([[The cluster's Python 3.13 and virtualenv:
  virtualenv --no-download dask && source ~/dask/bin/activate && pip install dask
pip finds packages in /opt/wheelhouse only (no internet): pip download ... on a
machine with it, or ask the lab to lock them (containers/lesson-requirements.in).]])
family("python")
prepend_path("PATH", "/opt/software/python/3.13/bin")
-- Python 3.12+ has no distutils but setuptools' own, which the lesson's
-- Cython build scripts import: every new virtualenv gets setuptools.
setenv("VIRTUALENV_SETUPTOOLS", "bundle")
