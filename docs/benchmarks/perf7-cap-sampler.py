"""Sample CPU ticks of postgres and redis-server processes (incl. ones that exit) and
launch py-spy on the bench's server supervisors. usage: sampler.py OUTDIR DATADIR SPY(0/1) DELAY DUR PYSPY"""
import os, sys, time, json, subprocess, signal
out, datadir, spy, delay, dur, pyspy = sys.argv[1], sys.argv[2], sys.argv[3] == "1", float(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
def scan():
    res = {}
    for p in os.listdir("/proc"):
        if not p.isdigit(): continue
        try:
            s = open(f"/proc/{p}/stat").read()
        except OSError: continue
        name = s[s.index("(")+1:s.rindex(")")]
        if name in ("postgres", "redis-server"):
            f = s[s.rindex(")")+2:].split()
            res[int(p)] = (name, int(f[11]) + int(f[12]))
    return res
first = scan(); last = dict(first); seen = {}
t0 = time.time(); spied = False; procs = []
stop = False
def handler(*a):
    global stop; stop = True
signal.signal(signal.SIGTERM, handler)
while not stop:
    cur = scan()
    for p, v in cur.items(): last[p] = v
    if spy and not spied:
        sups = []
        for p in os.listdir("/proc"):
            if not p.isdigit(): continue
            try:
                env = open(f"/proc/{p}/environ", "rb").read()
                cmd = open(f"/proc/{p}/cmdline", "rb").read()
            except OSError: continue
            if b"imhub\x00serve" in cmd and (f"IMHUB_DATA_DIR={datadir}".encode()) in env:
                sups.append(int(p))
        db = os.environ.get("db")
        if sups and db and not hasattr(sys, "_found"):
            r = subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", db, "-tAc", "select count(*) > 0 from messages"], capture_output=True, text=True)
            if r.stdout.strip() == "t":
                sys._found = time.time(); delay = min(delay, 3.0)
        if sups and time.time() - t0 > 1:
            if not db and not hasattr(sys, "_found"): sys._found = time.time()
            if hasattr(sys, "_found") and time.time() - sys._found >= delay:
                for i, sp in enumerate(sups):
                    procs.append(subprocess.Popen([pyspy, "record", "--subprocesses", "--nonblocking", "-p", str(sp), "-d", str(int(dur)), "-r", "100", "-f", "raw", "-o", f"{out}/spy{i}.txt"], stdout=open(f"{out}/spy{i}.log", "w"), stderr=subprocess.STDOUT))
                spied = True
    time.sleep(0.5)
tot = {"postgres": 0, "redis-server": 0}
for p, (name, v) in last.items():
    base = first.get(p, (name, 0))[1] if p in first else 0
    tot[name] += v - base
for pr in procs: pr.wait(timeout=60)
json.dump({"ticks": tot, "hz": os.sysconf("SC_CLK_TCK")}, open(f"{out}/sampler.json", "w"))
