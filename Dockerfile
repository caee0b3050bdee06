# One image for every fleet process; docker-compose.yml picks the command.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md celeryconfig.py ./
COPY tickfleet ./tickfleet
COPY workers ./workers
COPY producers ./producers
RUN pip install --no-cache-dir .
RUN useradd --create-home tickfleet
USER tickfleet
EXPOSE 8000 5555
CMD ["uvicorn", "producers.api:app", "--host", "0.0.0.0", "--port", "8000"]
