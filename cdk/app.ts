// CDK entry point (`cdk.json` runs it with tsx): one stack, configured from context.
import { App } from 'aws-cdk-lib';
import { addTextshiftStack } from './textshift-app.js';

const app = new App();
addTextshiftStack(app);
app.synth();
