/**
 * launchbay JupyterLab extension: a runs sidebar, run views and a compare view.
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import {
  ICommandPalette,
  InputDialog,
  MainAreaWidget,
  WidgetTracker
} from '@jupyterlab/apputils';
import { LabIcon } from '@jupyterlab/ui-components';

import { CompareView } from './compare';
import { ModelsView } from './models';
import { RunView } from './runview';
import { RunsSidebar } from './sidebar';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <path d="M12 2c3 2.2 4.5 5.4 4.5 9.2l2.3 2.6c.3.3.3.8 0 1.1l-2.6 2.4a.7.7 0 0 1-1.1-.2L14.2 16h-4.4l-.9 1.1a.7.7 0 0 1-1.1.2l-2.6-2.4a.8.8 0 0 1 0-1.1l2.3-2.6C7.5 7.4 9 4.2 12 2zm0 5.2a1.8 1.8 0 1 0 0 3.6 1.8 1.8 0 0 0 0-3.6z"/>
    <path d="M9.5 18h5l-1 3.2c-.2.6-.6.8-1.5.8s-1.3-.2-1.5-.8z"/>
  </g>
</svg>`;

export const launchbayIcon = new LabIcon({ name: 'launchbay:icon', svgstr: ICON_SVG });

export namespace CommandIDs {
  export const openRun = 'launchbay:open-run';
  export const compare = 'launchbay:compare';
  export const openSidebar = 'launchbay:open-sidebar';
  export const refresh = 'launchbay:refresh';
  export const models = 'launchbay:models';
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'launchbay-labextension:plugin',
  description: 'Browse, watch, compare and re-run launchbay runs.',
  autoStart: true,
  optional: [ILayoutRestorer, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null
  ) => {
    const { commands, shell } = app;
    const runs = new WidgetTracker<MainAreaWidget<RunView>>({ namespace: 'launchbay-run' });
    const compares = new WidgetTracker<MainAreaWidget<CompareView>>({ namespace: 'launchbay-compare' });

    const openRun = (runId: string) => {
      void commands.execute(CommandIDs.openRun, { run_id: runId });
    };
    const openCompare = (runIds: string[]) => {
      void commands.execute(CommandIDs.compare, { run_ids: runIds });
    };

    const openModels = () => {
      void commands.execute(CommandIDs.models);
    };

    // A link such as /lab?launchbay-run=RUN_ID (Azure ML v1's run.get_portal_url()) opens that run.
    const linked = new URLSearchParams(window.location.search).get('launchbay-run');
    if (linked) {
      void app.restored.then(() => openRun(linked));
    }

    const sidebar = new RunsSidebar({ openRun, compare: openCompare, openModels });
    sidebar.title.icon = launchbayIcon;
    sidebar.title.caption = 'launchbay';
    shell.add(sidebar, 'left', { rank: 850 });

    commands.addCommand(CommandIDs.openRun, {
      label: args => (args.run_id ? `Open launchbay run ${args.run_id}` : 'Open launchbay run…'),
      caption: 'Open a launchbay run: details, live log, metrics, files',
      icon: launchbayIcon,
      execute: async args => {
        let runId = (args.run_id as string) || '';
        if (!runId) {
          const result = await InputDialog.getText({ title: 'Open launchbay run', placeholder: 'run id' });
          if (!result.button.accept || !result.value) {
            return;
          }
          runId = result.value.trim();
        }
        const existing = runs.find(w => w.content.runId === runId);
        if (existing) {
          shell.activateById(existing.id);
          return existing;
        }
        const content = new RunView({ runId, openRun });
        // MainAreaWidget mirrors the content's title (the view updates it as
        // the status changes), so label and icon are set on the content.
        content.title.label = `Run ${runId}`;
        content.title.icon = launchbayIcon;
        const widget = new MainAreaWidget({ content });
        widget.id = `launchbay-run-${runId}`;
        widget.title.closable = true;
        void runs.add(widget);
        shell.add(widget, 'main');
        shell.activateById(widget.id);
        return widget;
      }
    });

    commands.addCommand(CommandIDs.compare, {
      label: 'Compare launchbay runs',
      caption: 'Compare the runs selected in the launchbay sidebar',
      icon: launchbayIcon,
      isEnabled: args => ((args.run_ids as string[] | undefined) || sidebar.selected).length >= 2,
      execute: args => {
        const ids = ((args.run_ids as string[] | undefined) || sidebar.selected).slice();
        if (ids.length < 2) {
          return;
        }
        const content = new CompareView({ runIds: ids, openRun });
        content.title.icon = launchbayIcon;
        const widget = new MainAreaWidget({ content });
        widget.id = `launchbay-compare-${ids.join('-')}-${Date.now()}`;
        widget.title.closable = true;
        void compares.add(widget);
        shell.add(widget, 'main');
        shell.activateById(widget.id);
        return widget;
      }
    });

    let models: MainAreaWidget<ModelsView> | null = null;
    commands.addCommand(CommandIDs.models, {
      label: 'Show launchbay models',
      caption: 'Registered models and the runs that produced them',
      icon: launchbayIcon,
      execute: () => {
        if (models && !models.isDisposed) {
          void models.content.refresh();
          shell.activateById(models.id);
          return models;
        }
        const content = new ModelsView({ openRun });
        content.title.icon = launchbayIcon;
        models = new MainAreaWidget({ content });
        models.id = 'launchbay-models';
        models.title.closable = true;
        shell.add(models, 'main');
        shell.activateById(models.id);
        return models;
      }
    });

    commands.addCommand(CommandIDs.openSidebar, {
      label: 'Show launchbay runs',
      icon: launchbayIcon,
      execute: () => shell.activateById(sidebar.id)
    });

    commands.addCommand(CommandIDs.refresh, {
      label: 'Refresh launchbay runs',
      execute: () => sidebar.refresh()
    });

    if (palette) {
      const category = 'launchbay';
      palette.addItem({ command: CommandIDs.openSidebar, category });
      palette.addItem({ command: CommandIDs.openRun, category });
      palette.addItem({ command: CommandIDs.refresh, category });
      palette.addItem({ command: CommandIDs.models, category });
    }

    if (restorer) {
      restorer.add(sidebar, 'launchbay-sidebar');
      void restorer.restore(runs, {
        command: CommandIDs.openRun,
        args: w => ({ run_id: w.content.runId }),
        name: w => w.content.runId
      });
      void restorer.restore(compares, {
        command: CommandIDs.compare,
        args: w => ({ run_ids: w.content.runIds }),
        name: w => w.content.runIds.join(',')
      });
    }
  }
};

export default plugin;
