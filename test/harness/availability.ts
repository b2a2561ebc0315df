/**
 * A workload that must stay available while nodes are drained, and a poll that measures it: two web replicas
 * spread over the workers, a Service, a PodDisruptionBudget of minAvailable 1; and, from a machine, a request to
 * the Service's cluster IP and a read of where the replicas run and whether they are Ready, every half second.
 */
import { shellQuote } from "../../modules/render/shell";
import { untilOutput } from "./provision";
import type { Machine } from "./machines";

/** The Deployment `web` (2 replicas), its Service and PodDisruptionBudget, as one kubectl List. */
export function webWorkload(image: string): string {
  const labels = { app: "web" };
  const deployment = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "web", namespace: "default" },
    spec: {
      replicas: 2,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          // One replica a worker; a cordoned node is no place to go (nodeTaintsPolicy Honor), so a drained
          // worker's replica moves to the other one.
          topologySpreadConstraints: [
            {
              maxSkew: 1,
              topologyKey: "kubernetes.io/hostname",
              whenUnsatisfiable: "DoNotSchedule",
              nodeTaintsPolicy: "Honor",
              labelSelector: { matchLabels: labels },
            },
          ],
          terminationGracePeriodSeconds: 15,
          containers: [
            {
              name: "web",
              image,
              command: ["/bin/sh", "-c", "mkdir /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www"],
              ports: [{ containerPort: 8080 }],
              readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
              // Serves until the Service has stopped sending it requests (kube-proxy's rules follow the
              // endpoints a moment after the eviction), as a rolling workload should.
              lifecycle: { preStop: { exec: { command: ["sleep", "3"] } } },
            },
          ],
        },
      },
    },
  };
  const service = {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: "web", namespace: "default" },
    spec: { selector: labels, ports: [{ port: 80, targetPort: 8080 }] },
  };
  const budget = {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    metadata: { name: "web", namespace: "default" },
    spec: { minAvailable: 1, selector: { matchLabels: labels } },
  };
  return JSON.stringify({ apiVersion: "v1", kind: "List", items: [deployment, service, budget] });
}

/** One poll: the answer of the Service and, when the API answered, each replica's node and readiness. */
export interface PollSample {
  /** Seconds since the epoch. */
  at: number;
  /** The answering replica's pod name, or undefined when the request failed. */
  answeredBy?: string;
  error?: string;
  /** Ready replicas, or undefined when the API did not answer. */
  ready?: number;
  /** Nodes with a replica (Ready or not). */
  nodes?: string[];
}

export interface AvailabilityPoll {
  /** Resolves once the first sample is taken. */
  started: Promise<unknown>;
  /** Stops the poll and returns every sample. */
  stop(): Promise<PollSample[]>;
}

const STOP_FILE = "/run/nodeforge-availability.stop";
const ALIVE_FILE = "/run/nodeforge-availability.alive";

/** Polls the `web` Service at `serviceIp` and its replicas (with `kubectl`, an admin's) from `machine`. */
export function availabilityPoll(machine: Machine, serviceIp: string, kubectl: string): AvailabilityPoll {
  const pods = `{range .items[*]}{.spec.nodeName}/{.status.conditions[?(@.type=="Ready")].status} {end}`;
  const script = [
    `rm -f ${STOP_FILE} ${ALIVE_FILE}`,
    `while [ ! -e ${STOP_FILE} ]; do`,
    "  now=$(date +%s.%N)",
    `  if body=$(curl -fsS -m 2 ${shellQuote(`http://${serviceIp}/`)} 2>&1); then http="ok:$body"; else http="fail:$(printf '%s' "$body" | tr '\\t\\n' '  ' | cut -c1-120)"; fi`,
    `  pods=$(timeout 3 ${kubectl} --request-timeout=2s get pods -l app=web -o jsonpath='${pods}' 2>/dev/null) || pods=api-down`,
    `  printf '%s\\t%s\\t%s\\n' "$now" "$http" "$pods"`,
    `  touch ${ALIVE_FILE}`,
    "  sleep 0.5",
    "done",
  ].join("\n");
  const run = machine.run(script, { timeoutMs: 3_600_000 });
  return {
    started: untilOutput(machine, `test -e ${ALIVE_FILE} && echo polling`, "the availability poll", 60),
    async stop() {
      await machine.run(`touch ${STOP_FILE}`);
      const result = await run;
      if (result.code !== 0) throw new Error(`availability poll exited ${result.code}: ${result.stderr}`);
      return result.stdout.trim().split("\n").map(parseSample);
    },
  };
}

function parseSample(line: string): PollSample {
  const [at = "", http = "", pods = ""] = line.split("\t");
  const sample: PollSample = { at: Number(at) };
  if (http.startsWith("ok:")) sample.answeredBy = http.slice(3).trim();
  else sample.error = http.replace(/^fail:/, "");
  if (pods !== "api-down") {
    const replicas = pods
      .trim()
      .split(" ")
      .filter(Boolean)
      .map((entry) => entry.split("/"));
    sample.nodes = replicas.map(([node = ""]) => node);
    sample.ready = replicas.filter(([, ready]) => ready === "True").length;
  }
  return sample;
}

export interface PollSummary {
  requests: number;
  /** `<seconds into the poll>: <error>` of each failed request. */
  failures: string[];
  /** The fewest Ready replicas the API reported. */
  minReady: number;
  /** Samples in which the API did not answer (its own restart). */
  apiDown: number;
  /** Workers that, at some sample, held no replica while the other held them all (their drain). */
  emptiedNodes: string[];
  text: string;
}

export function summarizePoll(samples: PollSample[], workers: readonly string[]): PollSummary {
  const start = samples[0]?.at ?? 0;
  const failures = samples
    .filter((sample) => sample.error !== undefined)
    .map((sample) => `${(sample.at - start).toFixed(1)} s: ${sample.error}`);
  const answered = samples.filter((sample) => sample.ready !== undefined);
  const readyCounts = answered.map((sample) => sample.ready!);
  const minReady = readyCounts.length > 0 ? Math.min(...readyCounts) : 0;
  const emptiedNodes = workers.filter((worker) =>
    answered.some((sample) => !sample.nodes!.includes(worker) && sample.nodes!.length > 0),
  );
  const answeredBy = new Set(samples.map((sample) => sample.answeredBy).filter(Boolean));
  const seconds = samples.length > 0 ? samples[samples.length - 1]!.at - start : 0;
  const text =
    `${samples.length} requests over ${seconds.toFixed(0)} s, ${failures.length} failed, answered by ` +
    `${answeredBy.size} replicas; fewest Ready replicas ${minReady}; API unanswered in ${samples.length - answered.length} ` +
    `polls; workers emptied by their drain: ${emptiedNodes.join(", ") || "none"}`;
  return {
    requests: samples.length,
    failures,
    minReady,
    apiDown: samples.length - answered.length,
    emptiedNodes,
    text,
  };
}
