# One image for every Bangkom service; docker-compose.yml picks the service with `command`:
#   uvicorn --factory services.<svc>.app:create_app --host 0.0.0.0 --port 8000
# Configuration only through BANGKOM_* environment variables (shared/settings.py).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# The dependencies in their own layer, from the lock (exact versions, hashes checked): a change
# of the code alone rebuilds only the layers below.
COPY requirements/runtime.txt ./requirements/
RUN pip install --require-hashes -r requirements/runtime.txt
COPY pyproject.toml ./
COPY shared ./shared
COPY services ./services
COPY deploy ./deploy
# Installed into site-packages, then the sources go: the process runs the installed package.
RUN pip install --no-deps . && cd / && rm -rf /src

RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin bangkom
WORKDIR /app
USER 10001:10001

EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
CMD ["uvicorn", "--factory", "services.enrollment.app:create_app", "--host", "0.0.0.0", "--port", "8000"]
