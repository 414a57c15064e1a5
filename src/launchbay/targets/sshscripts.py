"""The Python the SSH target runs on its host, through the connection's agent (sshagent.py).

Each script gets ``args`` and sets ``result``; none imports launchbay (the host
need not have it). Kept apart from ssh.py so the target reads as its hooks.
"""

# Run by the connection's remote agent (sshconn): ``args`` in, ``result`` out.
PROBE = r"""
import os, shutil, subprocess, sys
work = os.path.abspath(os.path.expanduser(args["workdir"]))
info = {"workdir": work, "uid": "%d:%d" % (os.getuid(), os.getgid()), "executable": sys.executable,
        "version": "%d.%d.%d" % sys.version_info[:3]}
try:
    os.makedirs(os.path.join(work, "runs"), exist_ok=True)
except OSError as exc:
    info["workdir_error"] = str(exc)
blobs = os.path.join(work, "blobs")
info["missing"] = [name for name in args["blobs"] if not os.path.isfile(os.path.join(blobs, name))]
info["uv"] = shutil.which("uv")
info["runtime_missing"] = [r for r in args["runtime"] if not os.path.isfile(os.path.join(work, r))]
if args["gpus"]:
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
        info["gpus"] = [ln.strip() for ln in out.stdout.splitlines() if ln.strip()]
    except (OSError, subprocess.SubprocessError):
        info["gpus"] = None
if args["docker"]:
    try:
        out = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"],
                             capture_output=True, text=True, timeout=30)
        info["docker"] = out.stdout.strip() if out.returncode == 0 else "error: " + out.stderr.strip()[-300:]
    except (OSError, subprocess.SubprocessError) as exc:
        info["docker"] = "error: %s" % exc
result = info
"""

# Reap runners this agent started that have ended (no zombies while the connection lives).
_REAP = r"""
import os
while True:
    try:
        pid, _status = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        break
    if pid == 0:
        break
"""

# Writes runner.json and starts the runner in a session of its own (setsid: no SIGHUP when
# the connection goes), stdio away from the channel; secrets come in ``args``, never on disk.
START = (
    _REAP
    + r"""
import subprocess
run_dir, names = args["run_dir"], args["names"]
journal, config = os.path.join(run_dir, names["journal_dir"]), os.path.join(run_dir, names["config"])
os.makedirs(journal, exist_ok=True)
with open(config + ".tmp", "w") as fh:
    fh.write(args["runner_json"])
os.replace(config + ".tmp", config)
env = dict(os.environ)
env.update(args["secret_env"])
with open(os.path.join(journal, names["log"]), "ab") as log:
    if args["wait"]:
        done = subprocess.run(args["argv"], stdin=subprocess.DEVNULL, capture_output=True, env=env, cwd=run_dir)
        log.write(done.stdout + done.stderr)
        if done.returncode:
            raise RuntimeError("%s failed: %s" % (args["argv"][0], done.stderr.decode(errors="replace")[-600:]))
        result = {"container": done.stdout.decode().strip()}
    else:
        proc = subprocess.Popen(args["argv"], stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                                cwd=run_dir, start_new_session=True, close_fds=True)
        result = {"pid": proc.pid}
"""
)

# Is the runner ``pid`` alive, and is it still the process that runs ``marker`` (the run dir)?
ALIVE = (
    _REAP
    + r"""
try:
    with open("/proc/%d/cmdline" % args["pid"], "rb") as fh:
        result = args["marker"].encode() in fh.read()
except FileNotFoundError:
    result = False
except OSError:
    import subprocess
    out = subprocess.run(["ps", "-p", str(args["pid"]), "-o", "args="], capture_output=True, text=True)
    result = args["marker"] in out.stdout
"""
)

# Builds ``folder/venv`` from ``requirements`` once (uv when the host has it, else venv + pip);
# a ``ready`` marker is written last, and an flock keeps two submits from building at once.
BUILD_ENV = r"""
import fcntl, os, re, shutil, subprocess, sys, time
folder = args["folder"]
os.makedirs(folder, exist_ok=True)
venv = os.path.join(folder, "venv")
python = os.path.join(venv, "bin", "python")
ready = os.path.join(folder, "ready")
with open(os.path.join(folder, ".lock"), "a") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if os.path.isfile(ready):
        result = {"python": python, "built": False, "seconds": 0.0}
    else:
        started = time.time()
        wanted = args["python"] or sys.executable
        if re.match(r"^[0-9]+([.][0-9]+)*$", wanted):
            wanted = "python" + wanted
        base = wanted if "/" in wanted else shutil.which(wanted)
        requirements = os.path.join(folder, "requirements.txt")
        with open(requirements, "w") as fh:
            fh.write(args["requirements"])
        with open(os.path.join(folder, "spec.json"), "w") as fh:
            fh.write(args["spec"])
        uv = shutil.which("uv") if args["uv"] else None
        if uv:
            steps = [[uv, "venv", "--python", str(base), venv]]
            if args["requirements"]:
                steps.append([uv, "pip", "install", "--python", python, "-r", requirements])
        elif args["requirements"] and subprocess.call([str(base), "-m", "pip", "--python", sys.executable, "--version"],
                                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) == 0:
            # the base interpreter's pip installs into a venv made without one (skips ensurepip: seconds)
            steps = [[str(base), "-m", "venv", "--without-pip", venv],
                     [str(base), "-m", "pip", "--python", python, "install", "--disable-pip-version-check",
                      "-r", requirements]]
        else:
            steps = [[str(base), "-m", "venv", venv]]
            if args["requirements"]:
                steps.append([python, "-m", "pip", "install", "--disable-pip-version-check", "-r", requirements])
        error = None if base else "no interpreter %r on the host." % wanted
        with open(os.path.join(folder, "build.log"), "w") as log:
            for step in steps if base else []:
                log.write("$ " + " ".join(step) + "\n")
                log.flush()
                code = subprocess.call(step, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
                if code:
                    error = "%s exited with code %d." % (os.path.basename(step[0]), code)
                    break
        if error:
            shutil.rmtree(venv, ignore_errors=True)
            with open(os.path.join(folder, "build.log"), errors="replace") as fh:
                result = {"error": error, "log_tail": fh.read().splitlines()[-15:]}
        else:
            with open(ready, "w") as fh:
                fh.write(repr(time.time()))
            result = {"python": python, "built": True, "seconds": time.time() - started}
"""
