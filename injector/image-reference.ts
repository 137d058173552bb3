/**
 * OCI image references (`onnx-sidecar.io/model-image`), checked with the grammar the
 * container runtime applies: github.com/distribution/reference (`regexp.go`,
 * `normalize.go`), which containerd and the kubelet use through `ParseDockerRef`:
 *
 *     reference        := name [ ":" tag ] [ "@" digest ]
 *     name             := [domain "/"] remote-name
 *     domain           := host [":" port-number]
 *     host             := domain-name | "[" IPv6 "]"
 *     domain-name      := domain-component ["." domain-component]*
 *     domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
 *     remote-name      := path-component ["/" path-component]*   (at most 255 characters)
 *     path-component   := /[a-z0-9]+/ [separator /[a-z0-9]+/]*
 *     separator        := /[._]|__|[-]+/
 *     tag              := /[\w][\w.-]{0,127}/
 *     digest           := algorithm ":" hex   (sha256: 64, sha384: 96, sha512: 128 lowercase hex)
 *
 * As in `ParseNormalizedNamed`, the first path element is the registry when it contains
 * `.` or `:`, is `localhost`, or has an upper-case letter; otherwise the name is on Docker
 * Hub (`ubuntu` is `docker.io/library/ubuntu`). The repository name must be lower case,
 * and a bare 64-character hex string (an image ID) is refused. The digest algorithms are the
 * ones go-digest registers. No npm package follows this grammar and is maintained (the
 * ports on npm stopped in 2024 or earlier), so it is written out here, a few regular
 * expressions composed as the Go source composes them, and tested against its cases.
 *
 * A reference longer than `MAX_REFERENCE_LENGTH` is refused before any expression runs,
 * so the work per annotation is bounded whatever a pod carries.
 */

/** A name of 255 characters, a 253-character host with a port, a tag and a sha512 digest fit. */
export const MAX_REFERENCE_LENGTH = 1024
/** `RepositoryNameTotalLengthMax` in distribution/reference. */
const MAX_PATH_LENGTH = 255
/** Hex characters of each digest algorithm go-digest registers. */
const DIGEST_ALGORITHMS: Readonly<Record<string, number>> = { sha256: 64, sha384: 96, sha512: 128 }
const DEFAULT_DOMAIN = 'docker.io'

const alphanumeric = '[a-z0-9]+'
const separator = '(?:[._]|__|[-]+)'
const pathComponent = `${alphanumeric}(?:${separator}${alphanumeric})*`
const remoteName = `${pathComponent}(?:/${pathComponent})*`
const domainNameComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])'
const domainName = `${domainNameComponent}(?:\\.${domainNameComponent})*`
const ipv6address = '\\[(?:[a-fA-F0-9:]+)\\]'
const domainAndPort = `(?:${domainName}|${ipv6address})(?::[0-9]+)?`
const tag = '[\\w][\\w.-]{0,127}'
const digest = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}'
const namePat = `(?:${domainAndPort}/)?${remoteName}`

const REFERENCE = new RegExp(`^(${namePat})(?::(${tag}))?(?:@(${digest}))?$`)
const NAME = new RegExp(`^(?:(${domainAndPort})/)?(${remoteName})$`)
const TAG = new RegExp(`^${tag}$`)
const DIGEST = new RegExp(`^${digest}$`)
const IDENTIFIER = /^[a-f0-9]{64}$/

export interface ImageReference {
  /** The reference as written; the pod gets this string unchanged. */
  text: string
  /** The registry host[:port]; `docker.io` when the reference names none. */
  domain: string
  /** The repository within the registry (`library/ubuntu` for `ubuntu`). */
  path: string
  tag?: string
  /** `algorithm:hex`. */
  digest?: string
}

/** `domain/remainder` as `splitDockerDomain` cuts it. */
function splitDomain (s: string): { domain: string, remainder: string, written: string } {
  const slash = s.indexOf('/')
  const first = s.slice(0, slash)
  let domain = DEFAULT_DOMAIN
  let written = s // the remainder as the user wrote it, for messages
  if (slash !== -1 && (first === 'localhost' || /[.:]/.test(first) || first.toLowerCase() !== first)) {
    domain = first === 'index.docker.io' ? DEFAULT_DOMAIN : first
    written = s.slice(slash + 1)
  }
  const remainder = domain === DEFAULT_DOMAIN && !written.includes('/') ? `library/${written}` : written
  return { domain, remainder, written }
}

/**
 * Parses a reference, or throws an Error whose message completes
 * `annotation KEY: "VALUE" ...` and says what is wrong.
 */
export function parseImageReference (s: string): ImageReference {
  const expected = 'expected [registry[:port]/]name[:tag][@sha256:<64 hex>]'
  if (s === '') throw new Error(`is not an image reference: it is empty (${expected})`)
  if (s.length > MAX_REFERENCE_LENGTH) throw new Error(`is not an image reference: it is ${s.length} characters long, more than ${MAX_REFERENCE_LENGTH}`)
  if (/\s/.test(s)) throw new Error(`is not an image reference: it contains white space (${expected})`)
  if (IDENTIFIER.test(s)) throw new Error('is an image ID, not a reference: name the repository too (name@sha256:<hex>)')

  const { domain, remainder, written } = splitDomain(s)
  const remote = remainder.split(':')[0] as string
  if (remote.toLowerCase() !== remote) throw new Error(`is not an image reference: the repository name '${written.split(/[:@]/)[0] ?? ''}' must be lower case`)

  const m = REFERENCE.exec(`${domain}/${remainder}`)
  if (m === null) throw new Error(`is not an image reference: ${diagnose(s)} (${expected})`)
  const name = NAME.exec(m[1] as string)
  // REFERENCE matched, so NAME matches its name part; the guard is for the type checker
  /* c8 ignore next */
  if (name === null) throw new Error(`is not an image reference (${expected})`)
  const path = name[2] as string
  if (path.length > MAX_PATH_LENGTH) throw new Error(`is not an image reference: the repository name is ${path.length} characters long, more than ${MAX_PATH_LENGTH}`)

  const ref: ImageReference = { text: s, domain: name[1] ?? '', path }
  if (m[2] !== undefined) ref.tag = m[2]
  if (m[3] !== undefined) ref.digest = checkDigest(m[3])
  return ref
}

/** go-digest's `Validate`: a registered algorithm and its length of lower-case hex. */
function checkDigest (d: string): string {
  const [algorithm = '', hex = ''] = d.split(':')
  const length = DIGEST_ALGORITHMS[algorithm]
  if (length === undefined) throw new Error(`is not an image reference: digest algorithm '${algorithm}' is not one of ${Object.keys(DIGEST_ALGORITHMS).join(', ')}`)
  if (hex.length !== length || !/^[a-f0-9]+$/.test(hex)) throw new Error(`is not an image reference: a ${algorithm} digest is ${length} lower-case hex characters (got ${hex.length}${/[A-F]/.test(hex) ? ', with upper case' : ''})`)
  return d
}

/** Which part of a reference that does not match breaks the grammar, for the message. */
function diagnose (s: string): string {
  const at = s.indexOf('@')
  const beforeDigest = at === -1 ? s : s.slice(0, at)
  if (at !== -1 && !DIGEST.test(s.slice(at + 1))) return `'${s.slice(at + 1)}' after @ is not a digest (algorithm:hex)`
  const lastSlash = beforeDigest.lastIndexOf('/')
  const colon = beforeDigest.indexOf(':', lastSlash + 1)
  const name = colon === -1 ? beforeDigest : beforeDigest.slice(0, colon)
  if (name === '') return 'it names no repository'
  if (colon !== -1 && !TAG.test(beforeDigest.slice(colon + 1))) return `'${beforeDigest.slice(colon + 1)}' is not a tag (letters, digits, '_', '.', '-', at most 128, not starting with '.' or '-')`
  if (name.endsWith('/') || name.startsWith('/') || name.includes('//')) return 'it has an empty path component'
  return `'${name}' is not a repository name (lower-case letters and digits, separated by '.', '_', '__' or '-'; path components joined by '/'; an optional registry host[:port] first)`
}

/** True when the reference pins content: a digest, with or without a tag. */
export function pinned (ref: ImageReference): boolean {
  return ref.digest !== undefined
}
