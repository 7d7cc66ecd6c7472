'use strict'
// The client suite on a simulated uni object (see platforms.js), against the local stack.
require('./suite.js')('uni')
