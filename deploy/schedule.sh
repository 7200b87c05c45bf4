#!/usr/bin/env bash
# seqbeam on Dataflow: build the images, build the Flex Template, run it once, and
# launch it every night from Cloud Scheduler.
#
#   deploy/schedule.sh images     # build + push the SDK image and the Flex Template image
#   deploy/schedule.sh template   # write the template spec file to $TEMPLATE_FILE
#   deploy/schedule.sh run infer  # run the template now (stage: preprocess or infer)
#   deploy/schedule.sh schedule   # Cloud Scheduler job: the infer stage daily at 02:00 UTC
#   deploy/schedule.sh all        # images, template, run preprocess, schedule
#
# An example to read and adapt: set the variables below (or export them) and run it
# from the repository root. It needs gcloud (authenticated), and docker for `images`
# (or use the Cloud Build variant noted in build_images).
#
# One-time setup it does not do:
#   gcloud services enable dataflow.googleapis.com artifactregistry.googleapis.com \
#     cloudscheduler.googleapis.com cloudbuild.googleapis.com
#   gcloud artifacts repositories create $REPO --repository-format=docker --location=$REGION
#   gcloud auth configure-docker $REGION-docker.pkg.dev
#   service accounts: $WORKER_SA runs the launcher and worker VMs (roles/dataflow.worker,
#   roles/storage.objectAdmin on the bucket, roles/artifactregistry.reader on the repo);
#   $SCHEDULER_SA calls the Dataflow API (roles/dataflow.developer) and may act as
#   $WORKER_SA (roles/iam.serviceAccountUser on it).
#
# The template runs one Beam job, preprocess or infer. Training is not a Beam job: run it
# on Vertex AI (deploy/vertex-train.yaml) or Kubernetes (deploy/k8s-train.yaml); the
# nightly infer job then reads the newest model under $OUTPUT_DIR/$TASK/model/.
set -euo pipefail

PROJECT="${PROJECT:-my-project}"
REGION="${REGION:-europe-west1}"
BUCKET="${BUCKET:-my-bucket}"
REPO="${REPO:-seqbeam}"
TAG="${TAG:-0.1.0}"
TASK="${TASK:-translate}"

SDK_IMAGE="${REGION}-docker.pkg.dev/${PROJECT}/${REPO}/seqbeam:${TAG}"
TEMPLATE_IMAGE="${REGION}-docker.pkg.dev/${PROJECT}/${REPO}/seqbeam-flex:${TAG}"
TEMPLATE_FILE="gs://${BUCKET}/templates/seqbeam-${TAG}.json"
OUTPUT_DIR="gs://${BUCKET}/seqbeam"
WORKER_SA="${WORKER_SA:-seqbeam-dataflow@${PROJECT}.iam.gserviceaccount.com}"
SCHEDULER_SA="${SCHEDULER_SA:-seqbeam-scheduler@${PROJECT}.iam.gserviceaccount.com}"

# Template parameters (deploy/flex-template/metadata.json). CONFIG is a config shipped in
# the image or a gs:// YAML; OVERRIDES are `key=value` pairs joined by ';' (each a --set).
CONFIG="${CONFIG:-configs/${TASK}.yaml}"
OVERRIDES="${OVERRIDES:-output_dir=${OUTPUT_DIR};data.path=gs://${BUCKET}/corpora/${TASK}/*.tsv;infer.input.path=gs://${BUCKET}/incoming/${TASK}/*.tsv}"

# Workers: preprocessing is CPU-bound and n2-standard-4 is enough; for large models at
# inference, a highmem type (one model copy per vCPU: one SDK process per vCPU).
MACHINE_TYPE="${MACHINE_TYPE:-n2-standard-4}"
MAX_WORKERS="${MAX_WORKERS:-20}"
SCHEDULE="${SCHEDULE:-0 2 * * *}"
TIME_ZONE="${TIME_ZONE:-Etc/UTC}"

build_images() {
  docker build -f deploy/Dockerfile -t "${SDK_IMAGE}" .
  docker push "${SDK_IMAGE}"
  docker build -f deploy/flex-template/Dockerfile --build-arg "SEQBEAM_IMAGE=${SDK_IMAGE}" \
    -t "${TEMPLATE_IMAGE}" .
  docker push "${TEMPLATE_IMAGE}"
  # Without a local docker:
  # gcloud builds submit --project="${PROJECT}" --config=deploy/cloudbuild.yaml \
  #   --substitutions="_SDK_IMAGE=${SDK_IMAGE},_TEMPLATE_IMAGE=${TEMPLATE_IMAGE}" .
}

build_template() {
  gcloud dataflow flex-template build "${TEMPLATE_FILE}" \
    --project="${PROJECT}" \
    --image="${TEMPLATE_IMAGE}" \
    --sdk-language=PYTHON \
    --metadata-file=deploy/flex-template/metadata.json
}

# gcloud splits --parameters on ','; the ^~^ prefix makes '~' the separator instead, so
# values may hold commas (e.g. infer.length_buckets=[16,32,64]). sdk_container_image runs
# the workers in the template image itself: the same packages that built the pipeline.
run_template() {
  local stage="${1:?stage: preprocess or infer}"
  gcloud dataflow flex-template run "seqbeam-${TASK}-${stage}-$(date -u +%Y%m%d-%H%M%S)" \
    --project="${PROJECT}" \
    --region="${REGION}" \
    --template-file-gcs-location="${TEMPLATE_FILE}" \
    --staging-location="gs://${BUCKET}/staging" \
    --temp-location="gs://${BUCKET}/tmp" \
    --service-account-email="${WORKER_SA}" \
    --worker-machine-type="${MACHINE_TYPE}" \
    --max-workers="${MAX_WORKERS}" \
    --parameters="^~^config=${CONFIG}~stage=${stage}~overrides=${OVERRIDES}~sdk_container_image=${TEMPLATE_IMAGE}"
}

# Cloud Scheduler calls the Dataflow REST method projects.locations.flexTemplates.launch
# with an OAuth token of $SCHEDULER_SA. The body is the same launch as run_template.
schedule_nightly() {
  local body
  body="$(mktemp)"
  cat > "${body}" <<EOF
{
  "launchParameter": {
    "jobName": "seqbeam-${TASK}-nightly-infer",
    "containerSpecGcsPath": "${TEMPLATE_FILE}",
    "parameters": {
      "config": "${CONFIG}",
      "stage": "infer",
      "overrides": "${OVERRIDES}",
      "sdk_container_image": "${TEMPLATE_IMAGE}"
    },
    "environment": {
      "stagingLocation": "gs://${BUCKET}/staging",
      "tempLocation": "gs://${BUCKET}/tmp",
      "serviceAccountEmail": "${WORKER_SA}",
      "machineType": "${MACHINE_TYPE}",
      "maxWorkers": ${MAX_WORKERS}
    }
  }
}
EOF
  # `create` fails if the job exists: use `gcloud scheduler jobs update http` with the
  # same flags to change it, `gcloud scheduler jobs run` to trigger it now.
  gcloud scheduler jobs create http "seqbeam-${TASK}-nightly-infer" \
    --project="${PROJECT}" \
    --location="${REGION}" \
    --schedule="${SCHEDULE}" \
    --time-zone="${TIME_ZONE}" \
    --uri="https://dataflow.googleapis.com/v1b3/projects/${PROJECT}/locations/${REGION}/flexTemplates:launch" \
    --http-method=POST \
    --headers="Content-Type=application/json" \
    --message-body-from-file="${body}" \
    --oauth-service-account-email="${SCHEDULER_SA}" \
    --oauth-token-scope="https://www.googleapis.com/auth/cloud-platform"
  rm -f "${body}"
}

case "${1:-}" in
  images) build_images ;;
  template) build_template ;;
  run) run_template "${2:-infer}" ;;
  schedule) schedule_nightly ;;
  all) build_images; build_template; run_template preprocess; schedule_nightly ;;
  *) sed -n '2,9p' "$0"; exit 2 ;;
esac
