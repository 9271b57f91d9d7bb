/** `make bench`: load benchmarks against an nginx anchor measured in the same run (performance.md).
 *  Starts the nginx backend once; per case, the nginx anchor and the case's subjects; runs wrk in alternating
 *  rounds (anchor, subject, ..., anchor, subject, ...), prints the median table and writes
 *  bench/results/<timestamp>.json. A subject that does not answer gets `subject not serving: <reason>` and the
 *  anchor is still measured. Everything it starts is stopped at the end, on error and on Ctrl-C.
 *
 *  Run: `make bench` (installs wrk and nginx, builds, runs this), or `node dist/bench/run.js [case ...]`. */

import { spawnSync } from 'node:child_process'
import { constants as fsConstants } from 'node:fs'
import { access, mkdir, rm, stat, writeFile } from 'node:fs/promises'
import { cpus, loadavg } from 'node:os'
import { delimiter, dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { renderRatioChart } from './chart.js'
import { type BenchCase, type BenchPaths, type CaseEnvironment, selectCases } from './cases.js'
import {
  LARGE_BODY_BYTES,
  LARGE_BODY_PATH,
  renderAnchorConf,
  renderBackendConf,
  SCRIPT_PROOF_RESPONSE_HEADER,
  SMALL_BODY,
  startNginx,
  writeLargeBody,
} from './nginx.js'
import { type BenchOptions, parseBenchOptions } from './options.js'
import { type Child, ChildRegistry, freePort, type ReadyExpectation, waitUntilServing } from './processes.js'
import { buildTargetReport, type CaseReport, formatComparisons, formatTable, summarize, type TargetReport, type TargetRole } from './report.js'
import { loadSubjectTemplate } from './slardar-subject.js'
import { runWrk, type WrkResult } from './wrk.js'

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const RESULTS_DIR = join(REPO_ROOT, 'bench/results')
const SUBJECT_TEMPLATE_PATH = join(REPO_ROOT, 'bench/slardar.bench.json5')
/** nginx starts in milliseconds; this only bounds a broken install. */
const NGINX_READY_MS = 10_000
/** SIGTERM, then SIGKILL after this; Slardar's bench config drains for at most 3 s. */
const STOP_GRACE_MS = 5_000
const BACKEND_PORT_COUNT = 3

interface Tools {
  readonly wrk: string
  readonly nginx: string
}

/** One thing measured in a case: the anchor or a subject, with the child that serves it. */
interface Target {
  readonly label: string
  readonly role: TargetRole
  readonly url: string
  readonly child: Child | null
  readonly rounds: WrkResult[]
  problem: string | null
}

/** Everything started, so shutdown can reach it from a signal handler. */
const sharedChildren = new ChildRegistry()
let caseChildren: ChildRegistry | null = null
/** The run's scratch directory, removed on every exit path unless BENCH_KEEP_TMP is set. */
let tmpDirToRemove: string | null = null
const shutdown = new AbortController()

function log(line: string): void {
  process.stdout.write(`${line}\n`)
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, fsConstants.X_OK)
    return true
  } catch {
    return false
  }
}

/** $WRK / $NGINX, else PATH, else /usr/sbin (Debian's nginx is there and /usr/sbin is not on every PATH). */
async function findTool(name: string, envVar: string): Promise<string> {
  const fromEnv = process.env[envVar]
  if (fromEnv !== undefined && fromEnv !== '') {
    if (await isExecutable(fromEnv)) return fromEnv
    throw new Error(`${envVar}=${fromEnv} is not an executable file`)
  }
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin'].filter((dir) => dir !== '')
  for (const dir of dirs) {
    if (await isExecutable(join(dir, name))) return join(dir, name)
  }
  throw new Error(`${name} not found on PATH or in /usr/sbin: run "make bench" (it installs wrk and nginx-light from Debian) or set ${envVar}=/path/to/${name}`)
}

/** For the results file only; a tool that prints no version is recorded as unknown. */
function toolVersion(path: string, args: readonly string[], pattern: RegExp): string {
  const result = spawnSync(path, args, { encoding: 'utf8', timeout: 5_000 })
  return pattern.exec(`${result.stdout ?? ''}${result.stderr ?? ''}`)?.[1] ?? 'unknown'
}

function expectationFor(benchCase: BenchCase, url: string, withinMs: number, scriptProof: string | null): ReadyExpectation {
  const expectation: ReadyExpectation = {
    url: `${url}${benchCase.path}`,
    withinMs,
    status: 200,
    bodyBytes: benchCase.path === LARGE_BODY_PATH ? LARGE_BODY_BYTES : Buffer.byteLength(SMALL_BODY),
  }
  return scriptProof === null ? expectation : { ...expectation, header: { name: SCRIPT_PROOF_RESPONSE_HEADER, value: scriptProof } }
}

async function startBackend(tools: Tools, tmpDir: string): Promise<number[]> {
  const ports: number[] = []
  for (let i = 0; i < BACKEND_PORT_COUNT; i++) ports.push(await freePort())
  const prefix = join(tmpDir, 'nginx-backend')
  const documentRoot = join(prefix, 'www')
  await writeLargeBody(documentRoot)
  const conf = renderBackendConf({ ports, documentRoot, isRoot: process.getuid?.() === 0 })
  const child = await startNginx(sharedChildren, 'nginx backend', tools.nginx, prefix, conf)
  for (const port of ports) {
    for (const [path, bytes] of [['/', Buffer.byteLength(SMALL_BODY)], [LARGE_BODY_PATH, LARGE_BODY_BYTES]] as const) {
      const ready = await waitUntilServing(child, { url: `http://127.0.0.1:${port}${path}`, withinMs: NGINX_READY_MS, status: 200, bodyBytes: bytes })
      if (!ready.ok) throw new Error(`nginx backend not serving: ${ready.reason}`)
    }
  }
  return ports
}

/** One wrk run per target per round, targets alternating inside each round (A B A B ...). */
async function measureRounds(targets: Target[], benchCase: BenchCase, options: BenchOptions, tools: Tools): Promise<void> {
  for (let round = 1; round <= options.rounds; round++) {
    for (const target of targets) {
      if (target.problem !== null || shutdown.signal.aborted) continue
      const load = { url: `${target.url}${benchCase.path}`, threads: options.threads, connections: options.connections }
      try {
        if (options.warmupSec > 0) await runWrk(tools.wrk, { ...load, durationSec: options.warmupSec }, shutdown.signal)
        const result = await runWrk(tools.wrk, { ...load, durationSec: options.durationSec }, shutdown.signal)
        target.rounds.push(result)
        const errors = result.non2xx3xx + result.socketErrors
        log(`  [${benchCase.name}] round ${round}/${options.rounds} ${target.label}: ${Math.round(result.requestsPerSec)} rps, ` +
          `p50 ${result.latencyP50Ms.toFixed(2)}ms, p99 ${result.latencyP99Ms.toFixed(2)}ms, ${errors} errors / ${result.requests}`)
      } catch (err) {
        target.problem = `${target.role === 'subject' ? 'subject' : 'anchor'} failed in round ${round}: ${(err as Error).message}`
      }
      if (target.child !== null && !target.child.isRunning && target.problem === null) {
        target.problem = `${target.role === 'subject' ? 'subject' : 'anchor'} died in round ${round}: ${target.child.describeExit()}`
      }
    }
  }
}

/** Runs one case from start to stop; never throws for a subject's failure, only reports it. */
async function runCase(
  benchCase: BenchCase,
  options: BenchOptions,
  tools: Tools,
  shared: { readonly tmpDir: string; readonly backendPorts: readonly number[]; readonly subjectTemplate: Readonly<Record<string, unknown>> },
): Promise<CaseReport> {
  const caseDir = join(shared.tmpDir, benchCase.name)
  await mkdir(caseDir, { recursive: true })
  const registry = new ChildRegistry()
  caseChildren = registry
  const header = { name: benchCase.name, question: benchCase.question, workers: benchCase.workers, path: benchCase.path }
  const accessLogs: string[] = []
  try {
    const serverPorts = benchCase.hasRefusingServer
      ? [...shared.backendPorts.slice(0, BACKEND_PORT_COUNT - 1), await freePort()]
      : [...shared.backendPorts]
    const anchorPort = await freePort()
    const anchorLog = join(caseDir, 'nginx-anchor-access.log')
    accessLogs.push(anchorLog)
    const anchorChild = await startNginx(registry, 'nginx anchor', tools.nginx, join(caseDir, 'nginx-anchor'), renderAnchorConf({
      listenPort: anchorPort,
      serverPorts,
      workers: benchCase.workers,
      tries: 2,
      accessLogPath: anchorLog,
      isRoot: process.getuid?.() === 0,
    }))
    const anchorUrl = `http://127.0.0.1:${anchorPort}`
    // The anchor runs no script, so it is checked without the script proof header.
    const anchorReady = await waitUntilServing(anchorChild, expectationFor(benchCase, anchorUrl, NGINX_READY_MS, null))
    if (!anchorReady.ok) return { ...header, problem: `nginx anchor not serving: ${anchorReady.reason}`, targets: [] }
    const targets: Target[] = [{ label: 'nginx', role: 'anchor', url: anchorUrl, child: anchorChild, rounds: [], problem: null }]

    const env: CaseEnvironment = {
      registry,
      paths: { ...benchPaths(), caseDir },
      subjectTemplate: shared.subjectTemplate,
      workers: benchCase.workers,
      backendPorts: shared.backendPorts,
      serverPorts,
      hasRefusingServer: benchCase.hasRefusingServer,
    }
    for (const subject of benchCase.subjects) {
      const started = await subject.start(env)
      if (!started.ok) {
        targets.push({ label: subject.label, role: 'subject', url: '', child: null, rounds: [], problem: `subject not serving: ${started.reason}` })
        continue
      }
      if (started.accessLogPath !== null) accessLogs.push(started.accessLogPath)
      const ready = await waitUntilServing(started.child, expectationFor(benchCase, started.url, options.readyTimeoutSec * 1000, benchCase.scriptProof))
      const problem = ready.ok ? null : `subject not serving: ${ready.reason}`
      if (problem !== null) {
        log(`  [${benchCase.name}] ${subject.label}: ${problem}`)
        // A subject that is up but not serving would only take CPU from the rounds it is not part of.
        await registry.stop(started.child, STOP_GRACE_MS)
      }
      targets.push({ label: subject.label, role: 'subject', url: started.url, child: started.child, rounds: [], problem })
    }

    await measureRounds(targets, benchCase, options, tools)
    const anchorSummary = summarize(targets[0]?.rounds ?? [])
    const reports: TargetReport[] = targets.map((t) => buildTargetReport(t.label, t.role, t.rounds, t.problem, anchorSummary))
    return { ...header, problem: null, targets: reports }
  } finally {
    await registry.stopAll(STOP_GRACE_MS)
    caseChildren = null
    // Access logs are written as production would, then dropped: a full run writes hundreds of MB.
    for (const path of accessLogs) await rm(path, { force: true })
  }
}

function benchPaths(): Omit<BenchPaths, 'caseDir'> {
  return {
    repoRoot: REPO_ROOT,
    cliPath: join(REPO_ROOT, 'dist/src/cli.js'),
    enginesPath: join(REPO_ROOT, 'dist/bench/engines.js'),
  }
}

function timestamp(date: Date): string {
  return date.toISOString().replace(/\.\d+Z$/, 'Z').replaceAll(':', '-')
}

async function stopEverything(): Promise<void> {
  shutdown.abort()
  await Promise.all([caseChildren?.stopAll(STOP_GRACE_MS), sharedChildren.stopAll(STOP_GRACE_MS)])
  if (tmpDirToRemove !== null) await rm(tmpDirToRemove, { recursive: true, force: true })
  tmpDirToRemove = null
}

async function main(): Promise<number> {
  const parsed = parseBenchOptions(process.env, process.argv.slice(2))
  if (!parsed.ok) {
    process.stderr.write(`bench: ${parsed.problems.join('\n       ')}\n`)
    return 2
  }
  const options = parsed.options
  const selected = selectCases(options.caseNames)
  if (!selected.ok) {
    process.stderr.write(`bench: ${selected.message}\n`)
    return 2
  }
  for (const path of Object.values(benchPaths())) {
    try {
      await stat(path)
    } catch {
      throw new Error(`${path} is missing: build first ("make build" or "npx tsc -p .")`)
    }
  }
  const tools: Tools = { wrk: await findTool('wrk', 'WRK'), nginx: await findTool('nginx', 'NGINX') }
  const startedAt = new Date()
  const tmpDir = join(RESULTS_DIR, 'tmp', timestamp(startedAt))
  await mkdir(tmpDir, { recursive: true })
  if (!options.keepTmp) tmpDirToRemove = tmpDir
  const subjectTemplate = await loadSubjectTemplate(SUBJECT_TEMPLATE_PATH)
  const loadStart = loadavg()
  log(`bench: ${selected.cases.map((c) => c.name).join(', ')}; ${options.rounds} round(s) of ${options.durationSec} s after ` +
    `${options.warmupSec} s warm-up, wrk -t${options.threads} -c${options.connections}; ${cpus().length} cpu(s), load ${loadStart.map((l) => l.toFixed(2)).join(' ')}`)
  const reports: CaseReport[] = []
  try {
    const backendPorts = await startBackend(tools, tmpDir)
    for (const benchCase of selected.cases) {
      if (shutdown.signal.aborted) break
      log(`case ${benchCase.name} (workers=${benchCase.workers}, ${benchCase.path}): ${benchCase.question}`)
      reports.push(await runCase(benchCase, options, tools, { tmpDir, backendPorts, subjectTemplate }))
    }
  } finally {
    await stopEverything()
  }

  log('')
  log(formatTable(reports))
  const comparisons = formatComparisons(reports)
  for (const line of comparisons) log(line)
  const resultsPath = join(RESULTS_DIR, `${timestamp(startedAt)}.json`)
  const results = {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      loadavgAtStart: loadStart,
      loadavgAtEnd: loadavg(),
      node: process.version,
      nginx: toolVersion(tools.nginx, ['-v'], /nginx\/(\S+)/),
      wrk: toolVersion(tools.wrk, ['-v'], /wrk (\S+)/),
    },
    settings: options,
    cases: reports,
    comparisons,
  }
  await writeFile(resultsPath, `${JSON.stringify(results, null, 2)}\n`)
  const chart = renderRatioChart(reports, `throughput vs nginx, ${startedAt.toISOString()} (median of ${options.rounds} round(s))`)
  const chartPath = resultsPath.replace(/\.json$/, '.svg')
  if (chart !== null) await writeFile(chartPath, chart)
  log(`\nnumbers are noisy on a shared machine; compare ratios, not absolute rps.`)
  log(`results: ${resultsPath}${chart === null ? '' : `, chart: ${chartPath}`}`)
  return 0
}

/** Ctrl-C (or a TERM from a CI runner) stops every child before exiting; a second signal exits at once. */
function onSignal(signal: NodeJS.Signals): void {
  if (shutdown.signal.aborted) {
    sharedChildren.killAllNow()
    caseChildren?.killAllNow()
    process.exit(130)
  }
  process.stderr.write(`\nbench: ${signal}, stopping everything it started\n`)
  void stopEverything().finally(() => process.exit(130))
}
process.on('SIGINT', onSignal)
process.on('SIGTERM', onSignal)
process.on('SIGHUP', onSignal)
process.on('exit', () => {
  sharedChildren.killAllNow()
  caseChildren?.killAllNow()
})

main().then(
  (code) => process.exit(code),
  async (err: unknown) => {
    process.stderr.write(`bench failed: ${(err as Error).message ?? String(err)}\n`)
    await stopEverything()
    process.exit(1)
  },
)
