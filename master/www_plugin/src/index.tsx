// rustfarm's pages of Buildbot's web UI: the menu entries Targets (the target matrix)
// and Releases (projects, their releases, a release's targets with their archives).
import {buildbotSetupPlugin} from 'buildbot-plugin-support';
import {FaBoxOpen, FaTable} from 'react-icons/fa';
import {TargetsPage} from './Targets';
import {ProjectPage, ProjectsPage, ReleasePage} from './Releases';
import './styles.css';

buildbotSetupPlugin(reg => {
  reg.registerMenuGroup({
    name: 'rustfarm-targets', caption: 'Targets', icon: <FaTable/>, order: 2,
    route: '/targets', parentName: null,
  });
  reg.registerMenuGroup({
    name: 'rustfarm-releases', caption: 'Releases', icon: <FaBoxOpen/>, order: 3,
    route: '/releases', parentName: null,
  });
  reg.registerRoute({route: '/targets', group: 'rustfarm-targets',
                     element: () => <TargetsPage/>});
  reg.registerRoute({route: '/releases', group: 'rustfarm-releases',
                     element: () => <ProjectsPage/>});
  reg.registerRoute({route: '/releases/:project', group: 'rustfarm-releases',
                     element: () => <ProjectPage/>});
  reg.registerRoute({route: '/releases/:project/:revision', group: 'rustfarm-releases',
                     element: () => <ReleasePage/>});
});
