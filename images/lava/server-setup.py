# The local LAVA server's objects, made once and kept (images/lava-server.sh start runs this inside
# `lava-server manage shell`, with Django and LAVA's models loaded): a superuser with an API token, the
# device type `qemu` (LAVA's stock qemu.jinja2), a worker with its token, and one QEMU device on that
# worker whose dictionary is images/lava/server-device.jinja2. Idempotent: what exists is kept, the
# device dictionary is rewritten, the token file is remade only when its token is gone from the database.
# Inputs from the environment (CMA_LAVA_*); writes the tokens to files (0600), prints neither.
import os
from pathlib import Path

from django.contrib.auth.models import User
from lava_scheduler_app.models import Device, DeviceType, Worker
from linaro_django_xmlrpc.models import AuthToken

env = os.environ
user_name, worker_name, device_name = env["CMA_LAVA_USER"], env["CMA_LAVA_WORKER"], env["CMA_LAVA_DEVICE"]
token_file, worker_token_file = Path(env["CMA_LAVA_TOKEN_FILE"]), Path(env["CMA_LAVA_WORKER_TOKEN_FILE"])
made = []


def write_secret(path: Path, secret: str) -> None:
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(secret + "\n")


user = User.objects.filter(username=user_name).first()
if user is None:
    user = User.objects.create_user(user_name, None, User.objects.make_random_password())
    user.is_staff = user.is_superuser = True
    user.save()
    made.append(f"user {user_name}")
secret = token_file.read_text().strip() if token_file.is_file() else ""
if not secret or not AuthToken.objects.filter(user=user, secret=secret).exists():
    token = AuthToken.objects.create(user=user, description="cma-harness --executor lava")
    write_secret(token_file, token.secret)
    made.append(f"API token ({token_file})")

device_type, created = DeviceType.objects.get_or_create(name="qemu")
if created:
    made.append("device type qemu")

worker = Worker.objects.filter(hostname=worker_name).first()
if worker is None:
    worker = Worker.objects.create(hostname=worker_name, description="cma-harness: the local worker",
                                   health=Worker.HEALTH_ACTIVE)
    made.append(f"worker {worker_name}")
if not worker_token_file.is_file() or worker_token_file.read_text().strip() != worker.token:
    write_secret(worker_token_file, worker.token)

device = Device.objects.filter(hostname=device_name).first()
if device is None:
    Device.objects.create(hostname=device_name, device_type=device_type, worker_host=worker,
                          description="cma-harness: the harness's QEMU guest (images/lava/server-device.jinja2)",
                          state=Device.STATE_IDLE, health=Device.HEALTH_GOOD)
    made.append(f"device {device_name}")
elif device.health in (Device.HEALTH_BAD, Device.HEALTH_MAINTENANCE, Device.HEALTH_UNKNOWN):
    device.health = Device.HEALTH_GOOD          # a stopped worker's device is back when it is
    device.save()
print("lava-server: made " + ", ".join(made) if made else "lava-server: user, token, worker and device already there")
