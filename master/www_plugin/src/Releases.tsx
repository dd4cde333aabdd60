// Releases: the artifact store's projects, a project's releases, and a release's
// targets with their archives (the artifact plugin's index.json beside each page).
// The files themselves are the store's: links go to plugins/artifacts/.
import {Link, useParams} from 'react-router-dom';
import {ARTIFACTS, humanSize, seg, useJson, when} from './data';

type Projects = {projects: {name: string; targets: string[]; latest: string | null;
                            releases: number}[]};
type Project = {project: string; targets: string[]; latest: string | null;
                releases: {revision: string; targets: string[]; complete: boolean;
                           first_built: number}[]};
type Archive = {
  target: string; name: string; path: string; size: number; sha256: string; built_at: number;
  binaries: {name: string; size: number; previous: number | null}[];
  signed: boolean; signature?: string; files: {name: string; path: string}[];
  rebuilt: {reproduced: boolean; build: string | null; differs: string[]; where: string} | null;
};
type Release = {project: string; revision: string; previous: string | null; missing: string[];
                sums: string; all: string | null; archives: Archive[]};

function Loading({what, error}: {what: string; error: string | null}) {
  return <p>{error ? `could not load ${what}: ${error}` : 'loading…'}</p>;
}

export function ProjectsPage() {
  const {data, error} = useJson<Projects>(`${ARTIFACTS}index.json`);
  return (
    <div className="container rustfarm rf-releases">
      <h2>Releases</h2>
      {!data ? <Loading what="the projects" error={error}/> :
        data.projects.length === 0 ? <p>Nothing has been built yet.</p> :
          <table className="table table-sm rf-projects">
            <thead><tr><th>project</th><th>releases</th><th>latest (every target)</th></tr></thead>
            <tbody>{data.projects.map(p =>
              <tr key={p.name} data-project={p.name}>
                <td><Link to={`/releases/${seg(p.name)}`}>{p.name}</Link></td>
                <td>{p.releases}</td>
                <td>{p.latest ? <Link to={`/releases/${seg(p.name)}/${seg(p.latest)}`}>
                  {p.latest}</Link> : 'none yet'}</td>
              </tr>)}
            </tbody>
          </table>}
    </div>
  );
}

export function ProjectPage() {
  const project = useParams().project || '';
  const {data, error} = useJson<Project>(`${ARTIFACTS}${seg(project)}/index.json`);
  return (
    <div className="container rustfarm rf-releases">
      <p><Link to="/releases">Releases</Link></p>
      <h2>{project}</h2>
      {!data ? <Loading what="its releases" error={error}/> : <>
        <p>{data.latest
          ? <>Latest, the newest revision built for every target: <Link
              to={`/releases/${seg(project)}/${seg(data.latest)}`}>{data.latest}</Link>
              {' '}(<a href={`${ARTIFACTS}${seg(project)}/latest/`}>latest/</a>)</>
          : 'No revision has been built for every target yet.'}</p>
        {data.releases.length === 0 ? <p>No release yet.</p> :
          <table className="table table-sm rf-project">
            <thead><tr><th>revision</th><th>built for</th><th>first built</th></tr></thead>
            <tbody>{data.releases.map(r =>
              <tr key={r.revision} data-revision={r.revision}>
                <td><Link to={`/releases/${seg(project)}/${seg(r.revision)}`}>{r.revision}</Link></td>
                <td>{r.complete ? 'all targets' : <span className="rf-missing">
                  {r.targets.length} of {data.targets.length || '?'} targets</span>}</td>
                <td>{when(r.first_built)}</td>
              </tr>)}
            </tbody>
          </table>}
      </>}
    </div>
  );
}

/** A package by its kind (deb, ipk), as the plain release page shows it. */
const shortName = (name: string) =>
  /\.(deb|ipk)$/.test(name) ? name.slice(name.lastIndexOf('.') + 1) : name;

function Binaries({archive}: {archive: Archive}) {
  return <>{archive.binaries.map(b => {
    const delta = b.previous === null ? null : b.size - b.previous;
    return <div key={b.name}>{b.name} {humanSize(b.size)}{delta === null ? '' : delta === 0
      ? ' (unchanged)'
      : <span className={delta > 0 ? 'rf-missing' : ''}>
          {` (${delta > 0 ? '+' : '-'}${humanSize(Math.abs(delta))})`}</span>}</div>;
  })}</>;
}

export function ReleasePage() {
  const params = useParams();
  const project = params.project || '';
  const revision = params.revision || '';
  const base = `${ARTIFACTS}${seg(project)}/${seg(revision)}/`;
  const {data, error} = useJson<Release>(`${base}index.json`);
  return (
    <div className="container rustfarm rf-releases">
      <p><Link to="/releases">Releases</Link> / <Link to={`/releases/${seg(project)}`}>
        {project}</Link></p>
      <h2>{project} {revision}</h2>
      {!data ? <Loading what="the release" error={error}/> : <>
        {data.missing.length > 0 &&
          <p className="rf-missing">Not built for: {data.missing.join(', ')}</p>}
        <div className="table-responsive"><table className="table table-sm rf-release">
          <thead><tr><th>target</th><th>archive</th><th>size</th>
            <th>{data.previous ? `binaries (against ${data.previous})` : 'binaries'}</th>
            <th>SHA-256</th><th>signed files</th><th>rebuilt</th></tr></thead>
          <tbody>{data.archives.map(a =>
            <tr key={a.target} data-target={a.target}>
              <td>{a.target}</td>
              <td><a className="archive" href={base + a.path}>{a.name}</a></td>
              <td className="rf-size">{humanSize(a.size)}</td>
              <td><Binaries archive={a}/></td>
              <td><code className="rf-sha">{a.sha256}</code></td>
              <td>{a.signed ? <>{a.files.map(f =>
                <a key={f.path} href={base + f.path}>{shortName(f.name)} </a>)}
                <a href={base + a.signature}>signature</a></>
                : <span className="rf-missing">not signed</span>}</td>
              <td>{a.rebuilt === null ? 'not checked' : <a
                className={a.rebuilt.reproduced ? '' : 'rf-missing'} href={a.rebuilt.build || '#'}>
                {a.rebuilt.reproduced ? 'reproduced'
                  : `not reproduced: ${a.rebuilt.differs.join(', ')}`}</a>}
                {a.rebuilt?.where && <><br/>{a.rebuilt.where}</>}</td>
            </tr>)}
          </tbody>
        </table></div>
        <p><a href={base + data.sums}>SHA256SUMS</a> of every archive
          {data.all && <> · <a href={base + data.all}>{data.all}</a> (every target, with
            SHA256SUMS)</>}</p>
      </>}
    </div>
  );
}
