"""The file names of a run folder and of a campaign folder: spelled here and nowhere else."""

# A run folder (one boot of one kernel).
SCENARIO = "scenario.yaml"          # the scenario as the run used it (defaults filled in)
SUMMARY = "summary.json"            # the run's end state and totals (written last, also after a crash)
LOOPS = "loops.jsonl"               # one record per loop, appended as the console delivers it
CONSOLE = "console.log"             # the board's kernel console, raw, as it arrived
QEMU_CMDLINE = "qemu-cmdline.txt"   # the QEMU command line of a QEMU board
TRACE = "trace.txt"                 # the ftrace text of the CMA failure path
TRACE_STREAM = "trace.stream"       # the trace while it streams out of the guest (renamed to TRACE at the end)
TRACE_STATS = "trace-stats.txt"     # the ring buffer's own overrun/dropped counters
BUSY_TRACES = "busy-traces.jsonl"   # each failed chunk joined to its busy pages and call chains
KERNEL_CONFIG = "kernel.config"     # the .config of the kernel that ran
KERNEL_RECORD = "kernel.json"       # that kernel's cache key, exact source, and every patch by sha256 and subject
MODULE_SOURCE = "cma_harness.c"     # the rendered test module source
HANG_STATE = "hang-state.txt"       # what every task was doing when a hang was declared
IMAGES = "images"                   # sub-folder: initramfs, disk image, DTB of this boot
BOARD = "board.yaml"                # the board file as the run used it (defaults filled in)
KMSG = "kmsg.txt"                   # a board's /dev/kmsg read over SSH, raw ("pri,seq,usec,flags;text")
QEMU_OUTPUT = "qemu-output.txt"     # what the SSH test bed's QEMU printed (its console goes to ser2net)
BOARD_PROBE = "board-probe.txt"     # `board check`: what the probe snippet printed on the board
SER2NET_LOG = "ser2net.log"         # the test bed's ser2net: its command line and output

# What `cma-harness import` adds to a run folder made from a LAVA job's output.
LAVA_LOG = "lava-output.yaml"       # the LAVA job's log, as lava-run wrote it (one YAML mapping a line)
LAVA_CASES = "lava-cases.jsonl"     # the test cases LAVA recorded (its monitor's), one a line

LAVA_JOB_FOLDER = "lava-job"        # sub-folder of a run `ab --executor lava-run` made: the boot's LAVA job folder

# A LAVA job folder (`cma-harness lava-job`): what lava-run is given, and where its output goes.
LAVA_JOB = "job.yaml"               # the job definition
LAVA_DEVICE = "device.yaml"         # the rendered device dictionary (QEMU guest: the harness's QEMU arguments)
LAVA_MANIFEST = "lava-job.json"     # what the job runs: scenario, variant, loops, kernel and module keys, files
LAVA_OUTPUT = "output"              # sub-folder: lava-run's --output-dir
LAVA_OUTPUT_LOG = "output.yaml"     # in it: the job's log (lava-run's stderr; a LAVA server's job log)
LAVA_OUTPUT_RESULT = "result.yaml"  # in it: lava-run's own pass/fail of the job
LAVA_SERVER_JOB = "server-job.yaml"     # the job as `--executor lava` submitted it to a LAVA server
LAVA_SERVER_RECORD = "server-job.json"  # that server's URL, the job's id and page, its states (never the token)
AUTORUN = "autorun.sh"              # in images/: the guest's own run (harness/guest/autorun.py)
KERNEL_IMAGE = "zImage"             # in images/: the kernel the job boots

# A campaign folder (an A/B campaign: its runs under RUNS).
CAMPAIGN = "campaign.json"          # the plan and scenario this folder measures (a resume must match)
DECISIONS = "decisions.jsonl"       # one line per look: counts, p-values, verdict
RUNS = "runs"                       # sub-folder: one run folder per boot, NNN-<arm key>

# A bisect folder (a binary search over a patch series: one campaign folder per step under STEPS).
BISECT = "bisect.json"              # the search's plan: baseline, patches (sha256, subject), what it looks for
STEPS = "steps"                     # sub-folder: one campaign folder per step, NN-<patched variant>

# What the presenters write into either kind of folder.
REPORT_HTML = "report.html"
REPORT_JSON = "report.json"
PLOT_PNG = "failures.png"
JUNIT_XML = "junit.xml"
OWN_OUTPUTS = frozenset({REPORT_HTML, REPORT_JSON, PLOT_PNG, JUNIT_XML})
