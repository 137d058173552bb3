/**
 * The AdmissionReview the webhook benchmarks send (`bench/webhook.ts`, `bench/admit.ts`).
 */

/** A pod as kube-controller-manager creates it from a Deployment: generateName, owner, labels. */
export function pod (annotated: boolean): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: 'recommender-7d9f8c6b5-',
      namespace: 'shop',
      labels: { app: 'recommender', 'pod-template-hash': '7d9f8c6b5', tier: 'backend' },
      annotations: annotated ? { 'onnx-sidecar.io/model': 'ranker:3,ctr', 'onnx-sidecar.io/cpu-limit': '2', 'kubectl.kubernetes.io/restartedAt': '2026-11-25T10:00:00Z' } : { 'kubectl.kubernetes.io/restartedAt': '2026-11-25T10:00:00Z' },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'recommender-7d9f8c6b5', uid: '8c1d7c55-0c7b-4b1e-9a51-3c3f0d2b8f11', controller: true, blockOwnerDeletion: true }]
    },
    spec: {
      containers: [{
        name: 'api',
        image: 'registry.example/recommender:2.4.1',
        ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
        env: [{ name: 'LOG_LEVEL', value: 'info' }, { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
        resources: { requests: { cpu: '500m', memory: '512Mi' }, limits: { memory: '1Gi' } },
        readinessProbe: { httpGet: { path: '/ready', port: 8080 }, periodSeconds: 5 },
        volumeMounts: [{ name: 'kube-api-access-x7k2p', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true }],
        terminationMessagePath: '/dev/termination-log',
        terminationMessagePolicy: 'File',
        imagePullPolicy: 'IfNotPresent'
      }],
      restartPolicy: 'Always',
      terminationGracePeriodSeconds: 30,
      dnsPolicy: 'ClusterFirst',
      serviceAccountName: 'default',
      securityContext: {},
      schedulerName: 'default-scheduler',
      tolerations: [{ key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }],
      priority: 0,
      enableServiceLinks: true,
      preemptionPolicy: 'PreemptLowerPriority',
      volumes: [{ name: 'kube-api-access-x7k2p', projected: { sources: [{ serviceAccountToken: { expirationSeconds: 3607, path: 'token' } }, { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } }], defaultMode: 420 } }]
    }
  }
}

/** The review as the API server sends it, as JSON. */
export function review (annotated: boolean, uid: number): string {
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: `00000000-0000-4000-8000-${String(uid).padStart(12, '0')}`,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      namespace: 'shop',
      operation: 'CREATE',
      userInfo: { username: 'system:serviceaccount:kube-system:replicaset-controller' },
      object: pod(annotated),
      oldObject: null,
      dryRun: false
    }
  })
}
