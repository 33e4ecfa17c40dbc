/**
 * The ObjectVision dashboard (deploy/perses/resources) drawn by Perses' own packages, the ones
 * the Perses server's UI is made of, against a Prometheus named in the page's address:
 *
 *   index.html?prometheus=http://127.0.0.1:9090&scrapeInterval=1s&start=15m
 *
 * It reads the dashboard from ./dashboard.json at load time, so one build draws whatever the
 * repository's dashboard is. Perses' server (compose, service perses) shows the same file; this
 * page exists so that the screenshot in docs/ comes from the real renderer without Docker.
 */
import { ThemeProvider, Typography } from '@mui/material';
import { ChartsProvider, generateChartsTheme, getTheme, SnackbarProvider } from '@perses-dev/components';
import { ViewDashboard } from '@perses-dev/dashboards';
import { dynamicImportPluginLoader, PluginRegistry } from '@perses-dev/plugin-system';
import * as prometheusPlugin from '@perses-dev/prometheus-plugin';
import * as statChartPlugin from '@perses-dev/stat-chart-plugin';
import * as timeseriesChartPlugin from '@perses-dev/timeseries-chart-plugin';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { createRoot } from 'react-dom/client';
import { BrowserRouter } from 'react-router-dom';
import { QueryParamProvider } from 'use-query-params';
import { ReactRouter6Adapter } from 'use-query-params/adapters/react-router-6';

const params = new URLSearchParams(window.location.search);

const pluginLoader = dynamicImportPluginLoader(
  [prometheusPlugin, timeseriesChartPlugin, statChartPlugin].map((plugin) => ({
    resource: plugin.getPluginModule(),
    importPlugin: () => Promise.resolve(plugin),
  })),
);

// The one datasource the dashboard's queries use (they name none: the default), reached by the
// browser directly where compose's Perses reaches it through its proxy.
const prometheus = {
  kind: 'GlobalDatasource',
  metadata: { name: 'prometheus' },
  spec: {
    default: true,
    plugin: {
      kind: 'PrometheusDatasource',
      spec: {
        directUrl: params.get('prometheus') ?? 'http://127.0.0.1:9090',
        scrapeInterval: params.get('scrapeInterval') ?? '15s',
      },
    },
  },
};

const datasourceApi = {
  buildProxyUrl: () => '',
  getGlobalDatasource: () => Promise.resolve(prometheus),
  listGlobalDatasources: () => Promise.resolve([prometheus]),
  listDatasources: () => Promise.resolve([]),
  getDatasource: () => Promise.resolve(undefined),
};

const queryClient = new QueryClient({
  defaultOptions: { queries: { refetchOnWindowFocus: false, retry: 0 } },
});
const muiTheme = getTheme('light');
const chartsTheme = generateChartsTheme(muiTheme, {});

function Dashboard({ dashboard }) {
  return (
    <BrowserRouter>
      <QueryParamProvider adapter={ReactRouter6Adapter}>
        <ThemeProvider theme={muiTheme}>
          <ChartsProvider chartsTheme={chartsTheme}>
            <SnackbarProvider anchorOrigin={{ vertical: 'top', horizontal: 'right' }}>
              <PluginRegistry pluginLoader={pluginLoader}>
                <QueryClientProvider client={queryClient}>
                  <ViewDashboard
                    dashboardResource={dashboard}
                    datasourceApi={datasourceApi}
                    isReadonly={true}
                    isVariableEnabled={false}
                    isDatasourceEnabled={false}
                    dashboardTitleComponent={
                      <Typography variant="h2">{dashboard.spec.display?.name ?? dashboard.metadata.name}</Typography>
                    }
                  />
                </QueryClientProvider>
              </PluginRegistry>
            </SnackbarProvider>
          </ChartsProvider>
        </ThemeProvider>
      </QueryParamProvider>
    </BrowserRouter>
  );
}

const root = createRoot(document.getElementById('root'));
fetch('dashboard.json')
  .then((response) => {
    if (!response.ok) throw new Error(`dashboard.json: HTTP ${response.status}`);
    return response.json();
  })
  .then((dashboard) => root.render(<Dashboard dashboard={dashboard} />))
  .catch((error) => root.render(<pre role="alert">{String(error)}</pre>));
