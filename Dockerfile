# tfforensics on a CUDA TensorFlow image. Build: docker build -t tfforensics .
# Run the main job on the GPU: docker run --gpus all -v "$PWD/out:/work" tfforensics
ARG TF_IMAGE=tensorflow/tensorflow:2.21.0-gpu
FROM ${TF_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    MPLBACKEND=Agg

WORKDIR /opt/tfforensics
# Dependencies first, so code changes do not re-install them.
COPY requirements.txt ./
RUN python3 -m pip install --no-cache-dir -r requirements.txt
COPY pyproject.toml README.md ./
COPY tfforensics ./tfforensics
RUN python3 -m pip install --no-cache-dir --no-deps . && tfforensics --version

WORKDIR /work
ENTRYPOINT ["tfforensics"]
CMD ["reproduce", "--out", "/work/report"]
