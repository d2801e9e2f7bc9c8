/**
 * bpfredir's Kubernetes objects, typed with the kubernetes-models packages: a misspelled or
 * misplaced field fails `tsc`, not a cluster. `node dist/deploy/kubernetes/render.js` writes
 * them to deploy/kubernetes/base/ (a unit test checks the committed files are its output).
 *
 * One pod per node (DaemonSet) in the node's network namespace (sk_lookup steers that
 * namespace's connections), with CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON only, the seccomp
 * profile of deploy/container/seccomp.json, a read-only root, and the rules in a ConfigMap
 * that the kubelet updates in place (bpfredir reloads it live: the `..data` swap).
 */
import { DaemonSet } from 'kubernetes-models/apps/v1';
import { ConfigMap, Namespace, ServiceAccount, type IPodSpec } from 'kubernetes-models/v1';
import { PodMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';

export const NAMESPACE = 'bpfredir';
export const APP = 'bpfredir';
export const IMAGE = 'bpfredir:0.1.0';
export const METRICS_PORT = 9477;
/** The engine runs one thread per CPU of its limit: `threads:` in config.yaml says the same. */
export const CPU_LIMIT = 2;
/** Where the kubelet looks for Localhost seccomp profiles is /var/lib/kubelet/seccomp/: this is relative to it. */
export const SECCOMP_PROFILE = 'profiles/bpfredir.json';
/** SIGTERM drains for 10 s (--drain) before it resets what is left; then the kubelet's SIGKILL. */
const GRACE_SECONDS = 30;

const labels = { 'app.kubernetes.io/name': APP, 'app.kubernetes.io/component': 'redirector' };

export const namespace = new Namespace({ metadata: { name: NAMESPACE, labels: { 'app.kubernetes.io/name': APP } } });

export const serviceAccount = new ServiceAccount({
  metadata: { name: APP, namespace: NAMESPACE, labels },
  // bpfredir never talks to the API server.
  automountServiceAccountToken: false,
});

/** The pod template's spec, also what the tests run with `podman kube play`. */
export function podSpec(): IPodSpec {
  return {
    serviceAccountName: APP,
    automountServiceAccountToken: false,
    hostNetwork: true,
    dnsPolicy: 'ClusterFirstWithHostNet',
    terminationGracePeriodSeconds: GRACE_SECONDS,
    // Every node, whatever its taints: a redirector that is missing on a node breaks that node's traffic.
    tolerations: [{ operator: 'Exists' }],
    securityContext: { seccompProfile: { type: 'Localhost', localhostProfile: SECCOMP_PROFILE } },
    containers: [
      {
        name: APP,
        image: IMAGE,
        imagePullPolicy: 'IfNotPresent',
        args: ['run', '--config', '/etc/bpfredir/config.yaml', '--metrics-listen', `0.0.0.0:${METRICS_PORT}`],
        ports: [{ name: 'metrics', containerPort: METRICS_PORT, protocol: 'TCP' }],
        securityContext: {
          runAsUser: 0,
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ['ALL'], add: ['BPF', 'NET_ADMIN', 'PERFMON'] },
        },
        resources: {
          requests: { cpu: '100m', memory: '128Mi' },
          limits: { cpu: String(CPU_LIMIT), memory: '512Mi' },
        },
        readinessProbe: { httpGet: { path: '/readyz', port: 'metrics' }, periodSeconds: 5, failureThreshold: 2 },
        livenessProbe: { httpGet: { path: '/healthz', port: 'metrics' }, periodSeconds: 10, failureThreshold: 3, initialDelaySeconds: 10 },
        volumeMounts: [
          { name: 'config', mountPath: '/etc/bpfredir', readOnly: true },
          { name: 'run', mountPath: '/run/bpfredir' },
          { name: 'bpffs', mountPath: '/sys/fs/bpf', readOnly: true },
        ],
      },
    ],
    volumes: [
      { name: 'config', configMap: { name: APP } },
      // The node's: the per-netns lock then also sees a bpfredir on the host or in another pod,
      // and root on the node can ask the admin socket (`bpfredir status`) as well as kubectl exec.
      { name: 'run', hostPath: { path: '/run/bpfredir', type: 'DirectoryOrCreate' } },
      // For operators' bpftool; bpfredir pins nothing.
      { name: 'bpffs', hostPath: { path: '/sys/fs/bpf', type: 'Directory' } },
    ],
  };
}

export const daemonSet = new DaemonSet({
  metadata: { name: APP, namespace: NAMESPACE, labels },
  spec: {
    selector: { matchLabels: labels },
    updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } },
    template: {
      metadata: {
        labels,
        // For a Prometheus that discovers pods by annotation (no Operator).
        annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(METRICS_PORT), 'prometheus.io/path': '/metrics' },
      },
      spec: podSpec(),
    },
  },
});

export const podMonitor = new PodMonitor({
  metadata: { name: APP, namespace: NAMESPACE, labels },
  spec: {
    selector: { matchLabels: labels },
    podMetricsEndpoints: [{ port: 'metrics', path: '/metrics', interval: '15s' }],
  },
});

/** The ConfigMap as the base writes it (kustomize's configMapGenerator makes the real one from config.yaml). */
export function configMap(configYaml: string): ConfigMap {
  return new ConfigMap({ metadata: { name: APP, namespace: NAMESPACE, labels }, data: { 'config.yaml': configYaml } });
}

/** The base's files: name → object. kustomization.yaml lists them. */
export const RESOURCES = {
  'namespace.yaml': namespace,
  'serviceaccount.yaml': serviceAccount,
  'daemonset.yaml': daemonSet,
  'podmonitor.yaml': podMonitor,
} as const;
