// fluxnb's JupyterLab extension: workflow files open in the designer (editor.js), a Runs
// panel in the left sidebar (runs.js), and "New workflow" / "New Petri net" in the command
// palette and the launcher. Everything goes through the control plane (/fluxnb/api/v1/).
import { ILayoutRestorer } from "@jupyterlab/application";
import { ICommandPalette, WidgetTracker } from "@jupyterlab/apputils";
import { ILauncher } from "@jupyterlab/launcher";
import { IFileBrowserFactory } from "@jupyterlab/filebrowser";
import { LabIcon } from "@jupyterlab/ui-components";
import "../../widgets/src/designer.css";
import "./lab.css";
import { DesignerFactory, FACTORY, stemOf } from "./editor.js";
import { RunsPanel } from "./runs.js";

const flowIcon = new LabIcon({
  name: "fluxnb:workflow",
  svgstr: `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">
<circle cx="5" cy="12" r="3"/><circle cx="19" cy="5" r="3"/><circle cx="19" cy="19" r="3"/>
<path d="M7.6 10.6 16.4 6.4l.8 1.7-8.8 4.2zM7.6 13.4l8.8 4.2-.8 1.7-8.8-4.2z"/></g></svg>`,
});
const netIcon = new LabIcon({
  name: "fluxnb:petri-net",
  svgstr: `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">
<circle cx="5" cy="12" r="3.2" fill="none" stroke="#616161" stroke-width="1.6"/><circle cx="5" cy="12" r="1.2"/>
<rect x="11" y="7" width="2.6" height="10"/><circle cx="19.5" cy="12" r="3.2" fill="none" stroke="#616161" stroke-width="1.6"/>
<path d="M8.2 11.2h2.8v1.6H8.2zM13.6 11.2h2.6v1.6h-2.6z"/></g></svg>`,
});

const WORKFLOW = (name) => `# A fluxnb workflow: drawn by the designer, run by the control plane.
# Steps call functions by import (run: module:function); see docs/manifest.md.
name: ${name}
pipeline:
  - step: extract
  - step: transform
    depends_on: extract
  - step: load
    depends_on: transform
`;
const PETRI_NET = (name) => `<?xml version="1.0" encoding="UTF-8"?>
<pnml xmlns="http://www.pnml.org/version-2009/grammar/pnml">
  <net id="${name}" type="http://www.pnml.org/version-2009/grammar/ptnet">
    <page id="page0">
      <place id="ready"><initialMarking><text>1</text></initialMarking></place>
      <transition id="go"/>
      <place id="done"/>
      <arc id="a1" source="ready" target="go"/>
      <arc id="a2" source="go" target="done"/>
    </page>
  </net>
</pnml>
`;

const NEW = {
  "fluxnb:new-workflow": { label: "New workflow", caption: "a new fluxnb workflow (*.flux.yaml) in the designer",
    icon: flowIcon, ext: ".flux.yaml", template: WORKFLOW, rank: 1 },
  "fluxnb:new-petri-net": { label: "New Petri net", caption: "a new Petri net (*.pnml) in the designer",
    icon: netIcon, ext: ".pnml", template: PETRI_NET, rank: 2 },
};

const plugin = {
  id: "fluxnb-lab:plugin",
  description: "fluxnb workflow files in the designer, a Runs panel, New workflow / New Petri net",
  autoStart: true,
  optional: [ICommandPalette, ILauncher, ILayoutRestorer, IFileBrowserFactory],
  activate(app, palette, launcher, restorer, browsers) {
    const { commands, docRegistry, serviceManager } = app;
    docRegistry.addFileType({
      name: "fluxnb-workflow",
      displayName: "fluxnb workflow",
      extensions: [".flux.yaml", ".flux.yml"],
      mimeTypes: ["text/x-yaml"],
      fileFormat: "text",
      contentType: "file",
      icon: flowIcon,
    });
    docRegistry.addFileType({
      name: "fluxnb-pnml",
      displayName: "Petri net (PNML)",
      extensions: [".pnml"],
      mimeTypes: ["application/xml"],
      fileFormat: "text",
      contentType: "file",
      icon: netIcon,
    });
    const factory = new DesignerFactory({
      name: FACTORY,
      label: "Workflow Designer",
      fileTypes: ["fluxnb-workflow", "fluxnb-pnml"],
      defaultFor: ["fluxnb-workflow", "fluxnb-pnml"],
      modelName: "text",
    }, commands);
    docRegistry.addWidgetFactory(factory);
    const tracker = new WidgetTracker({ namespace: "fluxnb-designer" });
    factory.widgetCreated.connect((_, widget) => {
      widget.context.pathChanged.connect(() => void tracker.save(widget));
      void tracker.add(widget);
    });
    if (restorer) {
      void restorer.restore(tracker, {
        command: "docmanager:open",
        args: (w) => ({ path: w.context.path, factory: FACTORY }),
        name: (w) => w.context.path,
      });
    }

    for (const [id, spec] of Object.entries(NEW)) {
      commands.addCommand(id, {
        label: spec.label,
        caption: spec.caption,
        icon: spec.icon,
        execute: async () => {
          const cwd = browsers?.tracker.currentWidget?.model.path ?? browsers?.defaultBrowser?.model.path ?? "";
          const made = await serviceManager.contents.newUntitled({ path: cwd, type: "file", ext: spec.ext });
          await serviceManager.contents.save(made.path, {
            type: "file",
            format: "text",
            content: spec.template(stemOf(made.path)),
          });
          return commands.execute("docmanager:open", { path: made.path, factory: FACTORY });
        },
      });
      if (palette) palette.addItem({ command: id, category: "fluxnb" });
      if (launcher) launcher.add({ command: id, category: "fluxnb", rank: spec.rank });
    }

    const runs = new RunsPanel(app.shell);
    runs.title.icon = flowIcon;
    app.shell.add(runs, "left", { rank: 600 });
    if (restorer) restorer.add(runs, "fluxnb-runs");
    commands.addCommand("fluxnb:show-runs", {
      label: "Show fluxnb runs",
      execute: () => app.shell.activateById(runs.id),
    });
    if (palette) palette.addItem({ command: "fluxnb:show-runs", category: "fluxnb" });
  },
};

export default plugin;
