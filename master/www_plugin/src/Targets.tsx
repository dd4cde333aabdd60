// Targets: the target matrix (plugins/matrix/data.json), projects as rows and targets
// as columns, each cell the newest build of that project for that target.
import {useState} from 'react';
import {Link} from 'react-router-dom';
import {MATRIX_DATA, ago, humanSize, seg, useJson} from './data';

const REFRESH_MS = 5000;

type Cell = {
  result: string; number?: number; revision?: string | null; commit?: string | null;
  ended?: number | null; started?: number | null; summary?: string; size?: number | null;
  build_url?: string; download_url?: string; release_url?: string;
};
type Matrix = {
  projects: Record<string, string[]>;
  targets: Record<string, {arch: string; pool: string}>;
  cells: Record<string, Cell>;
};

/** The UI's route of an absolute ``<url>#/builders/...`` link. */
const route = (url: string) => url.includes('#') ? url.slice(url.indexOf('#') + 1) : url;

function MatrixCell({project, triple, cell}: {project: string; triple: string; cell?: Cell}) {
  if (!cell) return <td className="rf-cell none"/>;
  const meta = [ago(cell.ended || cell.started), humanSize(cell.size)].filter(Boolean).join(' · ');
  return (
    <td className={`rf-cell ${cell.result}`} data-result={cell.result} data-project={project}
        data-target={triple} title={cell.summary || ''}>
      {cell.result === 'none' ? 'not built' : <>
        {cell.build_url && <Link className="build" to={route(cell.build_url)}>
          #{cell.number} {cell.result}</Link>}
        {cell.revision && <><br/>{cell.release_url
          ? <Link className="rev" to={`/releases/${seg(project)}/${seg(cell.revision)}`}>
              {cell.revision}</Link>
          : <span className="rev">{cell.revision}</span>}</>}
        {meta && <><br/><span className="rf-meta">{meta}</span></>}
        {cell.download_url && <><br/><a className="download" href={cell.download_url}>
          download</a></>}
      </>}
    </td>
  );
}

export function TargetsPage() {
  const {data, error} = useJson<Matrix>(MATRIX_DATA, REFRESH_MS);
  const [wanted, setWanted] = useState('');
  const [arch, setArch] = useState('');
  const [pool, setPool] = useState('');
  if (!data) {
    return <div className="container rustfarm"><h2>Targets</h2>
      <p>{error ? `could not load the matrix: ${error}` : 'loading…'}</p></div>;
  }
  const archs = [...new Set(Object.values(data.targets).map(t => t.arch))].sort();
  const pools = [...new Set(Object.values(data.targets).map(t => t.pool))].sort();
  const triples = Object.keys(data.targets).filter(t =>
    (!arch || data.targets[t].arch === arch) && (!pool || data.targets[t].pool === pool));
  const projects = Object.keys(data.projects).filter(p => p.includes(wanted.trim()));
  return (
    <div className="container rustfarm rf-targets">
      <h2>Targets</h2>
      <form className="rf-filters" onSubmit={e => e.preventDefault()}>
        <label>project <input id="rf-project" type="search" placeholder="name contains"
                              value={wanted} onChange={e => setWanted(e.target.value)}/></label>
        <label>architecture <select id="rf-arch" value={arch}
                                    onChange={e => setArch(e.target.value)}>
          <option value="">all</option>{archs.map(a => <option key={a} value={a}>{a}</option>)}
        </select></label>
        <label>pool <select id="rf-pool" value={pool} onChange={e => setPool(e.target.value)}>
          <option value="">all</option>{pools.map(p => <option key={p} value={p}>{p}</option>)}
        </select></label>
      </form>
      <table className="table table-sm rf-matrix">
        <thead><tr><th>project</th>{triples.map(t =>
          <th key={t} className="target" title={`${data.targets[t].arch}, pool ${data.targets[t].pool}`}>
            {t}</th>)}</tr></thead>
        <tbody>{projects.map(p =>
          <tr key={p} data-project={p}><th><Link to={`/releases/${seg(p)}`}>{p}</Link></th>
            {triples.map(t => data.projects[p].includes(t)
              ? <MatrixCell key={t} project={p} triple={t} cell={data.cells[`${p} ${t}`]}/>
              : <td key={t} className="rf-cell"/>)}
          </tr>)}
        </tbody>
      </table>
      {error && <p className="rf-meta">could not update: {error}</p>}
    </div>
  );
}
