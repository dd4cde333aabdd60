// The part of Buildbot's buildbot-plugin-support (www/plugin_support/src/index.ts of
// Buildbot 4.3) this plugin uses. The package is not published on npm: Buildbot's UI
// gives it as the global BuildbotPluginSupport.
declare module 'buildbot-plugin-support' {
  export type GroupSettings = {
    name: string;
    parentName: string | null;
    caption: string;
    route: string | null;
    icon?: JSX.Element;
    order: number | null;
  };
  export type RouteConfig = {
    route: string;
    group: string | null;
    element: () => JSX.Element;
  };
  export type RegistrationCallbacks = {
    registerMenuGroup: (group: GroupSettings) => void;
    registerRoute: (route: RouteConfig) => void;
  };
  export function buildbotSetupPlugin(
    callback: (reg: RegistrationCallbacks, config: unknown) => void): void;
}
