# Sourced by infra/test.sh and .ci/run: creates .venv with the pinned tools
# of infra/requirements-dev.txt, reinstalling only when that file changes.
venv=.venv
stamp="$venv/.requirements"
if [ ! -x "$venv/bin/python" ] || ! cmp -s infra/requirements-dev.txt "$stamp" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r infra/requirements-dev.txt
  cp infra/requirements-dev.txt "$stamp"
fi
