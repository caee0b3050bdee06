# One image for every fleet process; docker-compose.yml picks the command.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md celeryconfig.py ./
COPY tickfleet ./tickfleet
COPY workers ./workers
COPY producers ./producers
RUN pip install --no-cache-dir .
# Every process runs as this user, never root: Celery warns about root on every start,
# and a compromised task would own the container. The code stays root's, read-only to it.
RUN groupadd --gid 10001 tickfleet \
    && useradd --uid 10001 --gid tickfleet --create-home --shell /usr/sbin/nologin tickfleet
# The tick archive's folder, the fleet user's: a named volume mounted there takes its owner.
RUN mkdir -p /var/lib/tickfleet/archive && chown -R tickfleet:tickfleet /var/lib/tickfleet
USER tickfleet
EXPOSE 8000 5555
# The API on every interface of the container: it refuses to start without TICKFLEET_API_KEY.
ENV API_HOST=0.0.0.0 API_PORT=8000
CMD ["python", "-m", "producers.api"]
